package cli

import (
	"log/slog"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/server"
)

// reloader rereads the configuration (the --config file under the
// command-line flags) on SIGHUP and applies what can change while running.
type reloader struct {
	file  string
	load  func() (config.Config, error) // nil: no file to reread
	level *slog.LevelVar
}

// apply loads the configuration again and puts in force the log level and
// the bootstrap and external mappings (listeners added and removed, the
// removed ones' connections drained). A configuration with problems keeps
// the running one, every problem logged with its path. Other changed
// settings are named as applying at the next start. It returns the
// configuration now in force.
func (rl *reloader) apply(srv *server.Server, current config.Config, log *slog.Logger) config.Config {
	next, err := rl.load()
	if err != nil {
		log.Error("configuration not reloaded: the running one stays", "file", rl.file, "err", err)
		return current
	}
	if problems := server.Check(next); len(problems) > 0 {
		for _, p := range problems {
			log.Error("configuration not reloaded: the running one stays", "file", rl.file, "problem", p.Error())
		}
		return current
	}
	rl.level.Set(parseLevel(next.Log.Level))
	r, err := srv.Remap(next.Proxy.BootstrapServers, next.Proxy.ExternalServers)
	if err != nil {
		log.Error("some mappings not applied", "file", rl.file, "err", err)
	}
	applied := current
	applied.Log.Level = next.Log.Level
	applied.Proxy.BootstrapServers, applied.Proxy.ExternalServers = next.Proxy.BootstrapServers, next.Proxy.ExternalServers
	if later := changedSections(applied, next); len(later) > 0 {
		log.Warn("changed settings that apply at the next start", "file", rl.file, "sections", later)
	}
	log.Info("configuration reloaded", "file", rl.file, "log_level", next.Log.Level, "mappings_added", r.Added, "mappings_removed", r.Removed)
	return applied
}

// changedSections names the top-level sections in which a and b differ.
func changedSections(a, b config.Config) []string {
	var out []string
	for _, s := range []struct {
		name string
		a, b any
	}{
		{"proxy", a.Proxy, b.Proxy}, {"kafka", a.Kafka, b.Kafka}, {"auth", a.Auth, b.Auth}, {"acl", a.ACL, b.ACL},
		{"audit", a.Audit, b.Audit}, {"http", a.HTTP, b.HTTP}, {"log", a.Log, b.Log}, {"debug", a.Debug, b.Debug},
	} {
		if config.YAMLOf(s.a) != config.YAMLOf(s.b) {
			out = append(out, s.name)
		}
	}
	return out
}
