"""The HTTPS face: UCloud's end-user Jobs API over the native engine, bearer tokens."""
