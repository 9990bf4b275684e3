package mysql

import (
	"errors"
	"strings"

	"github.com/bastionhq/bastion/bastion/policy"
)

// tableCaseSQL reads how the target compares table names: 0, with case
// (Linux's default: orders and Orders are two tables); 1 or 2, without.
const tableCaseSQL = "SELECT @@lower_case_table_names"

// startTableCase tells the decider how the target compares table names,
// so that a rule on a table matches the names the target takes for it.
// A target that will not say is read the safe way: without case, which
// matches every name the target could take for the table (and more).
func (c *clientConn) startTableCase() error {
	v, err := c.up.selectValue(tableCaseSQL)
	switch {
	case errors.Is(err, errRefused):
		c.log.Warn("lower_case_table_names unknown", "err", err)
		return nil
	case err != nil:
		return err
	}
	c.dec.tableCase = tableCase(v)
	return nil
}

// tableCase is the comparison a value of lower_case_table_names means;
// anything but 0 counts as without case.
func tableCase(v string) policy.TableCase {
	if strings.TrimSpace(v) == "0" {
		return policy.TablesExactCase
	}
	return policy.TablesAnyCase
}
