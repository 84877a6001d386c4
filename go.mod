module github.com/pgxact/pgxact

go 1.24
