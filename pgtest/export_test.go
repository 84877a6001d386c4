package pgtest

// CheckLoopback exposes the DATABASE_URL host check to the external test package.
var CheckLoopback = checkLoopback

// WithDatabase exposes the DATABASE_URL rewriting to the external test package.
var WithDatabase = withDatabase
