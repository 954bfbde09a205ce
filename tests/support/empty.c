/* Keeps the test-support library non-empty before any helper exists. */
int flare__testsupport_empty;
