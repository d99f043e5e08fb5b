package mailer

// SetImportBatchForTest makes Import insert n rows at a time and returns
// a function that puts the batch size back.
func SetImportBatchForTest(n int) func() {
	old := importBatch
	importBatch = n
	return func() { importBatch = old }
}

// SetRecipientPageForTest makes digest creation and planning read n active
// subscribers at a time and returns a function that puts the page size back.
func SetRecipientPageForTest(n int) func() {
	old := recipientPage
	recipientPage = n
	return func() { recipientPage = old }
}
