package mailer

// SetPendingBatchForTest makes sends read n pending deliveries at a time
// and returns a function that restores the batch size.
func SetPendingBatchForTest(n int) func() {
	old := pendingBatch
	pendingBatch = n
	return func() { pendingBatch = old }
}

// PeakJobsForTest is the most deliveries the last send held at once.
func (m *Mailer) PeakJobsForTest() int { return int(m.peakJobs.Load()) }
