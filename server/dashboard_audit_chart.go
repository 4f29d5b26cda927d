package server

import (
	"math"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
)

// The activity chart: a token's requests per hour as an inline SVG bar
// chart, computed here and drawn by audit_token.html. No script and no
// style attribute (the CSP allows neither): the geometry is in attributes,
// the colours are classes of app.css. Each bar stacks the hour's allowed
// requests with its denials on top, in another colour; each non-empty hour
// carries a <title> with its numbers, the chart a title and a description,
// and the page a table of the same numbers.

// The chart's geometry, in SVG user units (the SVG scales to the width
// of the page).
const (
	chartSlot    = 5   // the width given to one hour
	chartBarSkip = 1   // the gap between two bars
	chartLeft    = 44  // room for the y-axis labels
	chartRight   = 8   // room for the last bar's edge
	chartTop     = 10  // room for the top label
	chartPlot    = 180 // the height of the bars' area
	chartBottom  = 34  // room for the day labels
	// chartDayLabel is about the width of a day label ("Nov 26").
	chartDayLabel = 40
)

// activityChart is what the template draws.
type activityChart struct {
	Width, Height int
	Left, Right   int // the plot's x range
	Top, Base     int // the plot's y range: Base is the y of zero
	TickX         int // where the y-axis labels end
	DayY          int // the baseline of the day labels
	Bars          []chartBar
	Ticks         []chartTick
	Days          []chartDay
}

// chartBar is one hour that had requests.
type chartBar struct {
	X, Width                int
	AllowedY, AllowedHeight string
	DeniedY, DeniedHeight   string
	HasAllowed, HasDenied   bool
	Label                   string // the hour and its numbers, for its <title>
}

// chartTick is a horizontal grid line with its value.
type chartTick struct {
	Y     int
	Label string
}

// chartDay marks the start of a UTC day.
type chartDay struct {
	X, LabelX int
	Anchor    string // the label's text-anchor: start, or end by the right edge
	Label     string
}

// newActivityChart lays out hours (consecutive, oldest first) as bars.
func newActivityChart(hours []gatehouse.HourCount) activityChart {
	c := activityChart{
		Width:  chartLeft + len(hours)*chartSlot + chartRight,
		Height: chartTop + chartPlot + chartBottom,
		Left:   chartLeft,
		Right:  chartLeft + len(hours)*chartSlot,
		Top:    chartTop,
		Base:   chartTop + chartPlot,
		TickX:  chartLeft - 6,
		DayY:   chartTop + chartPlot + 20,
	}
	busiest := 0
	for _, h := range hours {
		busiest = max(busiest, h.Allowed+h.Denied)
	}
	step := niceStep(busiest)
	top := 4 * step // the value at the top of the plot
	for i := 0; i <= 4; i++ {
		c.Ticks = append(c.Ticks, chartTick{Y: c.Base - i*chartPlot/4, Label: strconv.Itoa(i * step)})
	}
	scale := float64(chartPlot) / float64(top)
	for i, h := range hours {
		x := chartLeft + i*chartSlot
		if h.Hour.Hour() == 0 {
			day := chartDay{X: x, LabelX: x + 3, Anchor: "start", Label: h.Hour.Format("Jan 2")}
			if x+chartDayLabel > c.Right {
				day.LabelX, day.Anchor = c.Right, "end"
			}
			c.Days = append(c.Days, day)
		}
		if h.Allowed+h.Denied == 0 {
			continue
		}
		ah, dh := segment(h.Allowed, scale), segment(h.Denied, scale)
		c.Bars = append(c.Bars, chartBar{
			X: x + chartBarSkip, Width: chartSlot - chartBarSkip,
			AllowedY: coord(float64(c.Base) - ah), AllowedHeight: coord(ah),
			DeniedY: coord(float64(c.Base) - ah - dh), DeniedHeight: coord(dh),
			HasAllowed: h.Allowed > 0, HasDenied: h.Denied > 0,
			Label: hourLabel(h.Hour) + ": " + strconv.Itoa(h.Allowed) + " allowed, " + strconv.Itoa(h.Denied) + " denied",
		})
	}
	return c
}

// chartMinSegment is the least height of a non-empty part of a bar: one
// denial beside thousands of allowed requests stays visible.
const chartMinSegment = 1.5

func segment(n int, scale float64) float64 {
	if n == 0 {
		return 0
	}
	return max(float64(n)*scale, chartMinSegment)
}

// niceStep is the grid step for a chart whose tallest bar is n, such that
// four steps reach n: a whole number up to 20, above that 1, 2, 2.5 or 5
// times a power of ten.
func niceStep(n int) int {
	if n <= 20 {
		return max(1, (n+3)/4)
	}
	for p := 10; ; p *= 10 {
		for _, step := range []int{p, 2 * p, 5 * p / 2, 5 * p} {
			if 4*step >= n {
				return step
			}
		}
	}
}

// coord writes an SVG coordinate with at most two decimals.
func coord(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

// hourLabel names an hour for people: "Nov 25 10:00 UTC".
func hourLabel(t time.Time) string {
	return t.UTC().Format("Jan 2 15:04 UTC")
}
