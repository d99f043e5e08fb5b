package main

import "context"

func (m *Main) runDigest(ctx context.Context, configPath string, args []string) error {
	return usagef("digest: not built yet")
}
