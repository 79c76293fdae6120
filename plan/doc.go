// Package plan is the one place where a request becomes an export.
//
// [New] decides, in a fixed order, everything a request for a dataset
// means: whether the principal may run it and which parameters are pinned
// for it, the bound parameters (reserved names refused), the purpose of a
// personal export and the choice of columns, how each column is masked for
// the principal's roles, the writer's options (sheet name, title, marking,
// time zone), the file's name and the audit record. [Plan.Run] runs it:
// the record of intent of a personal export before the first byte
// (nothing is sent when it cannot be written), the engine, and the
// outcome after the last byte.
//
// The HTTP stream, the web UI, a background job (its submission and its
// worker) and the command line all build a Plan and run it; none of them
// assembles an export by itself, so a rule added here holds on every
// path, and the same request gives the same file on each.
//
// The plan lives beside the domain package rather than in it because it
// joins the domain to the format writers, the masking rules and the audit
// trail, which build on the domain themselves.
package plan
