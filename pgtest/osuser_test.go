package pgtest_test

import (
	"errors"
	"os/user"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
)

// fakeUsers stands for the user database and useradd, with other processes creating the user too.
type fakeUsers struct {
	appearsAt  int     // lookup (1-based) from which another process has created the user; 0: never
	createErrs []error // what each useradd returns; nil, or past the end: it creates the user
	lookupErr  error   // returned by every lookup, if set
	created    bool
	lookups    int
	creates    int
}

func (f *fakeUsers) lookup(name string) (*user.User, error) {
	f.lookups++
	if f.lookupErr != nil {
		return nil, f.lookupErr
	}
	if !f.created && (f.appearsAt == 0 || f.lookups < f.appearsAt) {
		return nil, user.UnknownUserError(name)
	}
	return &user.User{Username: name, Uid: "101", Gid: "102"}, nil
}

func (f *fakeUsers) create() error {
	f.creates++
	if f.creates <= len(f.createErrs) && f.createErrs[f.creates-1] != nil {
		return f.createErrs[f.creates-1]
	}
	f.created = true
	return nil
}

// Test binaries started together race to create the server user: a useradd that fails because another one won
// must not fail the binary, and one that keeps failing must not be retried for ever.
func TestEnsureServerUserSurvivesAConcurrentUseradd(t *testing.T) {
	exists := errors.New("useradd: user 'postgres' already exists: exit status 9")
	locked := errors.New("useradd: cannot lock /etc/group; try again later.: exit status 10")
	for _, c := range []struct {
		name        string
		users       fakeUsers
		wantErr     error // nil: the user is found
		wantCreates int
	}{
		{name: "the user exists", users: fakeUsers{appearsAt: 1}},
		{name: "the user is missing", users: fakeUsers{}, wantCreates: 1},
		{name: "another useradd created it first", users: fakeUsers{appearsAt: 2, createErrs: []error{exists}},
			wantCreates: 1},
		{name: "another useradd held the lock while creating it", users: fakeUsers{appearsAt: 2,
			createErrs: []error{locked}}, wantCreates: 1},
		{name: "something else held the lock for a while", users: fakeUsers{createErrs: []error{locked, locked}},
			wantCreates: 3},
		{name: "useradd keeps failing", users: fakeUsers{createErrs: []error{locked, locked, locked, locked, locked,
			locked}}, wantErr: locked, wantCreates: pgtest.CreateUserAttempts},
		{name: "the lookup fails otherwise", users: fakeUsers{lookupErr: exists}, wantErr: exists},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, err := pgtest.EnsureServerUser(c.users.lookup, c.users.create)
			require.Equal(t, c.wantCreates, c.users.creates, "useradd runs")
			if c.wantErr != nil {
				require.ErrorIs(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "postgres", u.Username)
		})
	}
}
