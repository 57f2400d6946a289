package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestEnvName(t *testing.T) {
	tests := []struct{ flag, env string }{
		{"data", "WHEREHOUSE_DATA"},
		{"http", "WHEREHOUSE_HTTP"},
		{"mqtt-tls", "WHEREHOUSE_MQTT_TLS"},
		{"log-level", "WHEREHOUSE_LOG_LEVEL"},
		{"mqtt-max-packet", "WHEREHOUSE_MQTT_MAX_PACKET"},
		{"broker-client-id", "WHEREHOUSE_BROKER_CLIENT_ID"},
		{"tls-cert", "WHEREHOUSE_TLS_CERT"},
	}
	for _, tc := range tests {
		t.Run(tc.flag, func(t *testing.T) {
			if got := envName(tc.flag); got != tc.env {
				t.Errorf("envName(%q) = %q, want %q", tc.flag, got, tc.env)
			}
		})
	}
}

// envTestFlags is a flag set with one flag of each kind the commands use.
type envTestFlags struct {
	fs       *flag.FlagSet
	data     string
	mqttTLS  string
	maxPkt   int
	verbose  bool
	interval time.Duration
}

func newEnvTestFlags() *envTestFlags {
	f := &envTestFlags{fs: flag.NewFlagSet("test", flag.ContinueOnError)}
	f.fs.SetOutput(io.Discard)
	f.fs.StringVar(&f.data, "data", "./data", "")
	f.fs.StringVar(&f.mqttTLS, "mqtt-tls", "", "")
	f.fs.IntVar(&f.maxPkt, "mqtt-max-packet", 65536, "")
	f.fs.BoolVar(&f.verbose, "verbose", false, "")
	f.fs.DurationVar(&f.interval, "interval", time.Minute, "")
	return f
}

// envMap is a fake getenv that records what was looked up.
type envMap struct {
	vars   map[string]string
	lookup []string
}

func (e *envMap) getenv(name string) string {
	e.lookup = append(e.lookup, name)
	return e.vars[name]
}

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		want     envTestFlags
		errNames []string // what the error must name; nil: no error
	}{
		{
			name: "defaults",
			want: envTestFlags{data: "./data", mqttTLS: "", maxPkt: 65536, interval: time.Minute},
		},
		{
			name: "env sets unset flags",
			env: map[string]string{
				"WHEREHOUSE_DATA":            "/var/lib/wherehouse",
				"WHEREHOUSE_MQTT_TLS":        ":8883",
				"WHEREHOUSE_MQTT_MAX_PACKET": "1024",
				"WHEREHOUSE_VERBOSE":         "true",
				"WHEREHOUSE_INTERVAL":        "5s",
			},
			want: envTestFlags{data: "/var/lib/wherehouse", mqttTLS: ":8883", maxPkt: 1024, verbose: true, interval: 5 * time.Second},
		},
		{
			name: "command line wins",
			args: []string{"--data", "/srv/wh", "--mqtt-tls=:9883", "--mqtt-max-packet=2048", "--verbose=false", "--interval=1h"},
			env: map[string]string{
				"WHEREHOUSE_DATA":            "/var/lib/wherehouse",
				"WHEREHOUSE_MQTT_TLS":        ":8883",
				"WHEREHOUSE_MQTT_MAX_PACKET": "1024",
				"WHEREHOUSE_VERBOSE":         "true",
				"WHEREHOUSE_INTERVAL":        "5s",
			},
			want: envTestFlags{data: "/srv/wh", mqttTLS: ":9883", maxPkt: 2048, verbose: false, interval: time.Hour},
		},
		{
			name: "command line equal to the default still wins",
			args: []string{"--data=./data"},
			env:  map[string]string{"WHEREHOUSE_DATA": "/var/lib/wherehouse"},
			want: envTestFlags{data: "./data", maxPkt: 65536, interval: time.Minute},
		},
		{
			name: "mixed",
			args: []string{"--data", "/srv/wh"},
			env:  map[string]string{"WHEREHOUSE_DATA": "/var/lib/wherehouse", "WHEREHOUSE_MQTT_TLS": ":8883"},
			want: envTestFlags{data: "/srv/wh", mqttTLS: ":8883", maxPkt: 65536, interval: time.Minute},
		},
		{
			name: "empty variable is unset",
			env:  map[string]string{"WHEREHOUSE_DATA": "", "WHEREHOUSE_MQTT_MAX_PACKET": ""},
			want: envTestFlags{data: "./data", maxPkt: 65536, interval: time.Minute},
		},
		{
			name: "other spellings are ignored",
			env:  map[string]string{"WHEREHOUSE_MQTT-TLS": ":1", "wherehouse_data": "/x", "DATA": "/y", "WHEREHOUSE_MQTTTLS": ":2"},
			want: envTestFlags{data: "./data", maxPkt: 65536, interval: time.Minute},
		},
		// With an error the command stops, so the flag values do not matter.
		{
			name:     "invalid int",
			env:      map[string]string{"WHEREHOUSE_MQTT_MAX_PACKET": "lots", "WHEREHOUSE_DATA": "/var/lib/wherehouse"},
			errNames: []string{"WHEREHOUSE_MQTT_MAX_PACKET", `"lots"`},
		},
		{
			name:     "several invalid",
			env:      map[string]string{"WHEREHOUSE_MQTT_MAX_PACKET": "1k", "WHEREHOUSE_VERBOSE": "maybe", "WHEREHOUSE_INTERVAL": "5"},
			errNames: []string{"WHEREHOUSE_MQTT_MAX_PACKET", "WHEREHOUSE_VERBOSE", "WHEREHOUSE_INTERVAL"},
		},
		{
			name: "invalid but overridden on the command line",
			args: []string{"--mqtt-max-packet=4096"},
			env:  map[string]string{"WHEREHOUSE_MQTT_MAX_PACKET": "lots"},
			want: envTestFlags{data: "./data", maxPkt: 4096, interval: time.Minute},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newEnvTestFlags()
			if err := f.fs.Parse(tc.args); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			env := &envMap{vars: tc.env}
			err := applyEnv(f.fs, env.getenv)
			if tc.errNames == nil && err != nil {
				t.Fatalf("applyEnv: %v", err)
			}
			if tc.errNames != nil {
				if err == nil {
					t.Fatal("applyEnv accepted an invalid value")
				}
				for _, name := range tc.errNames {
					if !strings.Contains(err.Error(), name) {
						t.Errorf("error %q does not name %s", err, name)
					}
				}
				return
			}
			got := envTestFlags{data: f.data, mqttTLS: f.mqttTLS, maxPkt: f.maxPkt, verbose: f.verbose, interval: f.interval}
			if got != tc.want {
				t.Errorf("flags = %+v, want %+v", got, tc.want)
			}
			for _, name := range env.lookup {
				if !strings.HasPrefix(name, "WHEREHOUSE_") {
					t.Errorf("looked up %q", name)
				}
			}
		})
	}
}
