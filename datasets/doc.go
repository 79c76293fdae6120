// Package datasets reads a datasets file: the YAML that declares an
// exportd installation's connections, datasets, auth and privacy rules, into
// an [exportd.Config]. [LoadConfig] collects every mistake it finds, each a
// [ConfigError] with the file, line and field at fault; [Check] compares
// each dataset's declared columns with what its database returns.
//
// The file's format is documented on [exportd.Config] and in the README.
package datasets
