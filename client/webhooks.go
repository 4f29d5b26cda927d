package client

import (
	"context"
	"net/http"

	"github.com/gatehouse/gatehouse"
)

// ListWebhooks returns every webhook, the configuration file's included.
func (c *Client) ListWebhooks(ctx context.Context) ([]gatehouse.Webhook, error) {
	var out gatehouse.List[gatehouse.Webhook]
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/webhooks"}, &out)
	return out.Items, err
}

// GetWebhook returns one webhook.
func (c *Client) GetWebhook(ctx context.Context, name string) (gatehouse.Webhook, error) {
	var out gatehouse.Webhook
	p, err := pathf("/api/v1/webhooks/%s", "webhook name", name)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, request{method: http.MethodGet, path: p}, &out)
	return out, err
}

// CreateWebhook stores a new webhook; its secret file must be readable by
// the server.
func (c *Client) CreateWebhook(ctx context.Context, req gatehouse.WebhookRequest) (gatehouse.Webhook, error) {
	var out gatehouse.Webhook
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/webhooks", body: req}, &out)
	return out, err
}

// UpdateWebhook replaces a webhook's URL, secret file and events.
func (c *Client) UpdateWebhook(ctx context.Context, name string, req gatehouse.WebhookRequest) (gatehouse.Webhook, error) {
	var out gatehouse.Webhook
	p, err := pathf("/api/v1/webhooks/%s", "webhook name", name)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, request{method: http.MethodPut, path: p, body: req}, &out)
	return out, err
}

// DeleteWebhook deletes a webhook.
func (c *Client) DeleteWebhook(ctx context.Context, name string) error {
	p, err := pathf("/api/v1/webhooks/%s", "webhook name", name)
	if err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodDelete, path: p}, nil)
}

// ListDeliveries returns a webhook's notifications, newest first.
func (c *Client) ListDeliveries(ctx context.Context, name string) ([]gatehouse.Notification, error) {
	var out gatehouse.List[gatehouse.Notification]
	p, err := pathf("/api/v1/webhooks/%s/deliveries", "webhook name", name)
	if err != nil {
		return out.Items, err
	}
	err = c.do(ctx, request{method: http.MethodGet, path: p}, &out)
	return out.Items, err
}
