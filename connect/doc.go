// Package connect opens an exportd source from a database URL, choosing
// the backend by its scheme.
//
//	src, err := connect.Open(ctx, os.Getenv("DATABASE_URL"), exportd.SourceOptions{})
//	if err != nil {
//		return err
//	}
//	defer src.Close()
//
// Error messages name the scheme, never the whole URL, so a password in it
// does not reach a log.
package connect
