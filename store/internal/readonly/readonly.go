// Package readonly is the Tx that the backends hand to a View's function.
package readonly

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Tx passes the reads of the Tx it wraps through and refuses every write
// with an internal error (a write in a View is a bug of the caller) before
// it reaches the database. It is the first of two guards: the backends run
// a View in a transaction the database itself refuses writes in, so a write
// method added to gatehouse.Tx and not here still writes nothing; it only
// fails with the database's error instead of this one.
type Tx struct{ gatehouse.Tx }

var _ gatehouse.Tx = Tx{}

// Refused is the error of a write in a View. Message is what a client sees
// of an internal error anyway; the cause names the method, for the log.
func Refused(method string) error {
	return gatehouse.Internal(fmt.Errorf("%s in a read-only View: writes need Tx", method))
}

func (Tx) CreateAccount(context.Context, gatehouse.Account) error {
	return Refused("CreateAccount")
}
func (Tx) UpdateAccount(context.Context, gatehouse.Account) error {
	return Refused("UpdateAccount")
}
func (Tx) DeleteAccount(context.Context, string) error { return Refused("DeleteAccount") }
func (Tx) CreateToken(context.Context, gatehouse.Token) error {
	return Refused("CreateToken")
}
func (Tx) DeleteTokens(context.Context, gatehouse.TokenFilter) ([]gatehouse.Token, error) {
	return nil, Refused("DeleteTokens")
}
func (Tx) SetTokenExpiry(context.Context, string, time.Time) error {
	return Refused("SetTokenExpiry")
}
func (Tx) CreateProject(context.Context, gatehouse.Project) error {
	return Refused("CreateProject")
}
func (Tx) UpdateProject(context.Context, gatehouse.Project) error {
	return Refused("UpdateProject")
}
func (Tx) DeleteProject(context.Context, string) error { return Refused("DeleteProject") }
func (Tx) CreateApplication(context.Context, gatehouse.Application) error {
	return Refused("CreateApplication")
}
func (Tx) UpdateApplication(context.Context, gatehouse.Application) error {
	return Refused("UpdateApplication")
}
func (Tx) DeleteApplication(context.Context, string) error {
	return Refused("DeleteApplication")
}
func (Tx) CreateOperation(context.Context, gatehouse.Operation) error {
	return Refused("CreateOperation")
}
func (Tx) UpdateOperation(context.Context, gatehouse.Operation) error {
	return Refused("UpdateOperation")
}
func (Tx) PutRBAC(context.Context, gatehouse.RBAC) error { return Refused("PutRBAC") }
func (Tx) AppendEvents(context.Context, []gatehouse.Event) error {
	return Refused("AppendEvents")
}
func (Tx) RecordChanges(context.Context, []gatehouse.Change) error {
	return Refused("RecordChanges")
}
func (Tx) PruneEvents(context.Context, time.Time) (int, error) {
	return 0, Refused("PruneEvents")
}
func (Tx) AddLoginAttempt(context.Context, gatehouse.LoginAttempt) error {
	return Refused("AddLoginAttempt")
}
func (Tx) FailLoginAttempt(context.Context, string) error { return Refused("FailLoginAttempt") }
func (Tx) DeleteLoginAttempt(context.Context, string) error {
	return Refused("DeleteLoginAttempt")
}
func (Tx) ClearLoginFailures(context.Context, string) error {
	return Refused("ClearLoginFailures")
}
func (Tx) PruneLoginAttempts(context.Context, time.Time) (int, error) {
	return 0, Refused("PruneLoginAttempts")
}
func (Tx) CreateTrustPolicy(context.Context, gatehouse.TrustPolicy) error {
	return Refused("CreateTrustPolicy")
}
func (Tx) UpdateTrustPolicy(context.Context, gatehouse.TrustPolicy) error {
	return Refused("UpdateTrustPolicy")
}
func (Tx) DeleteTrustPolicy(context.Context, string) error { return Refused("DeleteTrustPolicy") }
func (Tx) DeleteTokensCreatedBy(context.Context, string) ([]gatehouse.Token, error) {
	return nil, Refused("DeleteTokensCreatedBy")
}
func (Tx) AddExchangeReplay(context.Context, string, time.Time) error {
	return Refused("AddExchangeReplay")
}
func (Tx) PruneExchangeReplays(context.Context, time.Time) (int, error) {
	return 0, Refused("PruneExchangeReplays")
}
func (Tx) CreateWebhook(context.Context, gatehouse.Webhook) error { return Refused("CreateWebhook") }
func (Tx) UpdateWebhook(context.Context, gatehouse.Webhook) error { return Refused("UpdateWebhook") }
func (Tx) DeleteWebhook(context.Context, string) error            { return Refused("DeleteWebhook") }
func (Tx) EnqueueNotification(context.Context, gatehouse.Notification) (bool, error) {
	return false, Refused("EnqueueNotification")
}
func (Tx) UpdateNotification(context.Context, gatehouse.Notification) error {
	return Refused("UpdateNotification")
}
func (Tx) PruneNotifications(context.Context, time.Time) (int, error) {
	return 0, Refused("PruneNotifications")
}
func (Tx) AddRotation(context.Context, gatehouse.Rotation) error { return Refused("AddRotation") }
func (Tx) PruneRotations(context.Context, time.Time) ([]string, error) {
	return nil, Refused("PruneRotations")
}
