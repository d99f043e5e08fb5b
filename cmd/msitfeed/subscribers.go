package main

import "context"

func (m *Main) runSubscribers(ctx context.Context, configPath string, args []string) error {
	return usagef("subscribers: not built yet")
}
