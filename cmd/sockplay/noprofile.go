//go:build !profile

package main

// startProfile does nothing: CPU profiles need a binary built with
// -tags profile (see profile.go).
func startProfile() (stop func()) { return func() {} }
