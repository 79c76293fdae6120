// Package mask hides personal data in exports: masking rules for names,
// e-mail addresses, phone numbers, resident registration numbers, custom
// patterns and fixed replacements; a per-role [Policy] of which personal
// columns are shown in full, masked or left out; and a [Writer] that applies
// the resulting [Plan] in front of any format writer, so that every format
// and every path (direct stream, background job, signed link) masks alike.
//
//	policy := &mask.Policy{
//		Personal: map[string]mask.Rule{
//			"name":  mask.MustParse(exportd.MaskSpec{Rule: "name"}),
//			"email": mask.MustParse(exportd.MaskSpec{Rule: "email"}),
//		},
//		Roles: map[string]map[string]mask.Access{
//			"admin":   {"name": mask.Full, "email": mask.Full},
//			"support": {"name": mask.Masked},
//		},
//	}
//	plan, err := policy.Plan(principal.Roles, dataset.Columns, wantColumns)
//	...
//	export.NewWriter = plan.NewWriter(makeFormatWriter)
package mask
