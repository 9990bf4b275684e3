// Package recorder keeps the recordings of sessions: terminal sessions as
// asciicast v2 (package asciicast) and database sessions as JSON Lines query
// logs (package querylog).
//
// Recordings are objects in a Storage, the seam between the proxies and
// where recordings live. Dir, a local directory, is the embedded default;
// package spool, in front of an S3 bucket (package s3store), streams them
// to object storage through a durable local spool and signs them (package
// manifest). Package storagetest is the contract every Storage must pass.
//
// A proxy records a session through a Terminal (SSH) or a QueryLog (database)
// made by NewTerminal or NewQueryLog: it creates the session's object, writes
// events with times taken from the session's start, makes them durable every
// SyncInterval, and closes the object when the session ends. Package replay
// plays recordings back.
package recorder
