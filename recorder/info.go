package recorder

import "context"

// infoKey is the context key of WithInfo.
type infoKey struct{}

// WithInfo returns a context carrying facts about the session being
// recorded (id, user, target, login, protocol, …). A Storage that keeps
// metadata with its recordings (the spool puts them in the signed manifest)
// reads them in Create with InfoFrom; others ignore them.
func WithInfo(ctx context.Context, info map[string]string) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

// InfoFrom returns the facts WithInfo put in ctx, or nil.
func InfoFrom(ctx context.Context) map[string]string {
	info, _ := ctx.Value(infoKey{}).(map[string]string)
	return info
}

// Guarantor is a Storage that can tell whether a recording started now
// would be kept: the spool in front of object storage says no while the
// storage is unreachable or the spool is full. Proxies ask it before a
// fail-closed role's session starts.
type Guarantor interface {
	// Guarantee returns nil if recordings can be kept now, else why not.
	Guarantee(ctx context.Context) error
}
