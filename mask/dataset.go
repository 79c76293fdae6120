package mask

import (
	"fmt"

	"github.com/exportd/exportd"
)

// PolicyFor returns the Policy a dataset declares: its personal columns
// with their masking rules and its access: block. A dataset without
// personal columns gets a Policy that shows every column in full.
func PolicyFor(d *exportd.Dataset) (*Policy, error) {
	return PolicyForColumns(d, d.Columns)
}

// PolicyForColumns returns the Policy of d for the columns cols: those
// of one of its sheets (exportd.Sheet), to which the dataset's access:
// block applies by column name.
func PolicyForColumns(d *exportd.Dataset, cols []exportd.Column) (*Policy, error) {
	p := &Policy{Personal: map[string]Rule{}, Roles: map[string]map[string]Access{}}
	for _, c := range cols {
		if !c.Personal {
			continue
		}
		var r Rule
		if c.Mask != nil {
			var err error
			if r, err = Parse(*c.Mask); err != nil {
				return nil, fmt.Errorf("dataset %s: column %s: %w", d.Name, c.Name, err)
			}
		}
		p.Personal[c.Name] = r
	}
	for role := range d.Access {
		m := map[string]Access{}
		for col, a := range d.ColumnAccess(role) {
			acc, err := ParseAccess(a)
			if err != nil {
				return nil, fmt.Errorf("dataset %s: access.%s.%s: %w", d.Name, role, col, err)
			}
			m[col] = acc
		}
		p.Roles[role] = m
	}
	return p, nil
}
