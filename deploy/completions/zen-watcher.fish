# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_zen_watcher_global_optspecs
    string join \n c/config= listen= data-dir= log-format= tail= kube insecure-no-auth tls-cert= tls-key= h/help V/version
end

function __fish_zen_watcher_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_zen_watcher_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_zen_watcher_using_subcommand
    set -l cmd (__fish_zen_watcher_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -s c -l config -d 'A YAML configuration file' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -l listen -d 'Address to listen on (default 127.0.0.1:8080; `ZEN_LISTEN`)' -r
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -l data-dir -d 'Directory for the database (default ./zen-data; `ZEN_DATA_DIR`)' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -l log-format -d 'Log format (`ZEN_LOG_FORMAT`)' -r -f -a "text\t''
json\t''"
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -l tail -d 'Follow a file of JSON lines as a source, e.g. `audit:/var/log/kubernetes/audit.log` (repeatable; added to the configuration file\'s `tail`)' -r
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -l tls-cert -d 'Serve HTTPS with this certificate chain (PEM; `ZEN_TLS_CERT_FILE`), reloaded when it changes; with `--tls-key`' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -l tls-key -d 'The certificate\'s private key (PEM; `ZEN_TLS_KEY_FILE`)' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -l kube -d 'Kubernetes mode: watch report custom resources (`ZEN_KUBE`; on by default in a cluster)'
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -l insecure-no-auth -d 'Listen beyond loopback without any token (`ZEN_INSECURE_NO_AUTH`): anyone who reaches the port may ingest, read and change everything'
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -s V -l version -d 'Print version'
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -f -a "run" -d 'Run the daemon (the default): HTTP ingestion, the pipeline and the store'
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -f -a "normalize" -d 'Read a payload of one source format and print its events as JSON lines'
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -f -a "config" -d 'Check or print configuration'
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -f -a "dead-letters" -d 'What no sink could write, kept in the store\'s dead-letter table'
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -f -a "report" -d 'Write a performance report of a range as one self-contained HTML file, asked of the running daemon (at the configured `listen` address, with its token): `zen-watcher report --from -24h > report.html`'
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -f -a "completions" -d 'Print a shell\'s completion script: `zen-watcher completions bash > /etc/bash_completion.d/zen-watcher` (also in `deploy/completions/`)'
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -f -a "man" -d 'Print the manual page (roff): `zen-watcher man > zen-watcher.1` (also `deploy/man/`)'
complete -c zen-watcher -n "__fish_zen_watcher_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand run" -s c -l config -d 'A YAML configuration file' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand run" -l listen -d 'Address to listen on (default 127.0.0.1:8080; `ZEN_LISTEN`)' -r
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand run" -l data-dir -d 'Directory for the database (default ./zen-data; `ZEN_DATA_DIR`)' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand run" -l log-format -d 'Log format (`ZEN_LOG_FORMAT`)' -r -f -a "text\t''
json\t''"
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand run" -l tail -d 'Follow a file of JSON lines as a source, e.g. `audit:/var/log/kubernetes/audit.log` (repeatable; added to the configuration file\'s `tail`)' -r
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand run" -l tls-cert -d 'Serve HTTPS with this certificate chain (PEM; `ZEN_TLS_CERT_FILE`), reloaded when it changes; with `--tls-key`' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand run" -l tls-key -d 'The certificate\'s private key (PEM; `ZEN_TLS_KEY_FILE`)' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand run" -l kube -d 'Kubernetes mode: watch report custom resources (`ZEN_KUBE`; on by default in a cluster)'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand run" -l insecure-no-auth -d 'Listen beyond loopback without any token (`ZEN_INSECURE_NO_AUTH`): anyone who reaches the port may ingest, read and change everything'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand run" -s h -l help -d 'Print help'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand normalize" -s s -l source -d 'Source format: falco (or falcosidekick), audit, trivy, kyverno, kube-bench, checkov, generic' -r
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand normalize" -l input-format -d 'The syntax of the payload; `auto` takes JSON when it starts with `{` or `[`' -r -f -a "auto\t''
json\t''
yaml\t''"
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand normalize" -l settings -d 'A YAML file of normaliser settings (`audit`, `checkov`, `generic` sections)' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand normalize" -l node -d 'The node the payload came from (kube-bench output names none)' -r
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand normalize" -l received-at -d 'The time of receipt (RFC 3339), for findings that carry no time; default now' -r
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand normalize" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and not __fish_seen_subcommand_from check print help" -s h -l help -d 'Print help'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and not __fish_seen_subcommand_from check print help" -f -a "check" -d 'Validate a configuration file without starting anything'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and not __fish_seen_subcommand_from check print help" -f -a "print" -d 'Print the effective configuration: defaults, the file, `ZEN_*` variables and flags'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and not __fish_seen_subcommand_from check print help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and __fish_seen_subcommand_from print" -s c -l config -d 'A YAML configuration file' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and __fish_seen_subcommand_from print" -l listen -d 'Address to listen on (default 127.0.0.1:8080; `ZEN_LISTEN`)' -r
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and __fish_seen_subcommand_from print" -l data-dir -d 'Directory for the database (default ./zen-data; `ZEN_DATA_DIR`)' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and __fish_seen_subcommand_from print" -l log-format -d 'Log format (`ZEN_LOG_FORMAT`)' -r -f -a "text\t''
json\t''"
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and __fish_seen_subcommand_from print" -l tail -d 'Follow a file of JSON lines as a source, e.g. `audit:/var/log/kubernetes/audit.log` (repeatable; added to the configuration file\'s `tail`)' -r
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and __fish_seen_subcommand_from print" -l tls-cert -d 'Serve HTTPS with this certificate chain (PEM; `ZEN_TLS_CERT_FILE`), reloaded when it changes; with `--tls-key`' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and __fish_seen_subcommand_from print" -l tls-key -d 'The certificate\'s private key (PEM; `ZEN_TLS_KEY_FILE`)' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and __fish_seen_subcommand_from print" -l kube -d 'Kubernetes mode: watch report custom resources (`ZEN_KUBE`; on by default in a cluster)'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and __fish_seen_subcommand_from print" -l insecure-no-auth -d 'Listen beyond loopback without any token (`ZEN_INSECURE_NO_AUTH`): anyone who reaches the port may ingest, read and change everything'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and __fish_seen_subcommand_from print" -s h -l help -d 'Print help'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate a configuration file without starting anything'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "print" -d 'Print the effective configuration: defaults, the file, `ZEN_*` variables and flags'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand dead-letters; and not __fish_seen_subcommand_from replay help" -s h -l help -d 'Print help'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand dead-letters; and not __fish_seen_subcommand_from replay help" -f -a "replay" -d 'Ask the running daemon (at the configured `listen` address, with its token) to submit every dead letter\'s events again; each letter is removed once its events are stored. Prints what was replayed; exits 1 when letters are left'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand dead-letters; and not __fish_seen_subcommand_from replay help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand dead-letters; and __fish_seen_subcommand_from replay" -s c -l config -d 'A YAML configuration file' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand dead-letters; and __fish_seen_subcommand_from replay" -l listen -d 'Address to listen on (default 127.0.0.1:8080; `ZEN_LISTEN`)' -r
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand dead-letters; and __fish_seen_subcommand_from replay" -l data-dir -d 'Directory for the database (default ./zen-data; `ZEN_DATA_DIR`)' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand dead-letters; and __fish_seen_subcommand_from replay" -l log-format -d 'Log format (`ZEN_LOG_FORMAT`)' -r -f -a "text\t''
json\t''"
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand dead-letters; and __fish_seen_subcommand_from replay" -l tail -d 'Follow a file of JSON lines as a source, e.g. `audit:/var/log/kubernetes/audit.log` (repeatable; added to the configuration file\'s `tail`)' -r
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand dead-letters; and __fish_seen_subcommand_from replay" -l tls-cert -d 'Serve HTTPS with this certificate chain (PEM; `ZEN_TLS_CERT_FILE`), reloaded when it changes; with `--tls-key`' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand dead-letters; and __fish_seen_subcommand_from replay" -l tls-key -d 'The certificate\'s private key (PEM; `ZEN_TLS_KEY_FILE`)' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand dead-letters; and __fish_seen_subcommand_from replay" -l kube -d 'Kubernetes mode: watch report custom resources (`ZEN_KUBE`; on by default in a cluster)'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand dead-letters; and __fish_seen_subcommand_from replay" -l insecure-no-auth -d 'Listen beyond loopback without any token (`ZEN_INSECURE_NO_AUTH`): anyone who reaches the port may ingest, read and change everything'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand dead-letters; and __fish_seen_subcommand_from replay" -s h -l help -d 'Print help'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand dead-letters; and __fish_seen_subcommand_from help" -f -a "replay" -d 'Ask the running daemon (at the configured `listen` address, with its token) to submit every dead letter\'s events again; each letter is removed once its events are stored. Prints what was replayed; exits 1 when letters are left'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand dead-letters; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand report" -l from -d 'Start of the range: before now (`-24h`, `-90m`, `-3600`), or seconds since 1970' -r
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand report" -l to -d 'End of the range, as `--from`; `0` or `now` is now' -r
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand report" -s c -l config -d 'A YAML configuration file' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand report" -l listen -d 'Address to listen on (default 127.0.0.1:8080; `ZEN_LISTEN`)' -r
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand report" -l data-dir -d 'Directory for the database (default ./zen-data; `ZEN_DATA_DIR`)' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand report" -l log-format -d 'Log format (`ZEN_LOG_FORMAT`)' -r -f -a "text\t''
json\t''"
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand report" -l tail -d 'Follow a file of JSON lines as a source, e.g. `audit:/var/log/kubernetes/audit.log` (repeatable; added to the configuration file\'s `tail`)' -r
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand report" -l tls-cert -d 'Serve HTTPS with this certificate chain (PEM; `ZEN_TLS_CERT_FILE`), reloaded when it changes; with `--tls-key`' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand report" -l tls-key -d 'The certificate\'s private key (PEM; `ZEN_TLS_KEY_FILE`)' -r -F
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand report" -l kube -d 'Kubernetes mode: watch report custom resources (`ZEN_KUBE`; on by default in a cluster)'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand report" -l insecure-no-auth -d 'Listen beyond loopback without any token (`ZEN_INSECURE_NO_AUTH`): anyone who reaches the port may ingest, read and change everything'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand report" -s h -l help -d 'Print help'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand completions" -s h -l help -d 'Print help'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand man" -s h -l help -d 'Print help'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand help; and not __fish_seen_subcommand_from run normalize config dead-letters report completions man help" -f -a "run" -d 'Run the daemon (the default): HTTP ingestion, the pipeline and the store'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand help; and not __fish_seen_subcommand_from run normalize config dead-letters report completions man help" -f -a "normalize" -d 'Read a payload of one source format and print its events as JSON lines'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand help; and not __fish_seen_subcommand_from run normalize config dead-letters report completions man help" -f -a "config" -d 'Check or print configuration'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand help; and not __fish_seen_subcommand_from run normalize config dead-letters report completions man help" -f -a "dead-letters" -d 'What no sink could write, kept in the store\'s dead-letter table'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand help; and not __fish_seen_subcommand_from run normalize config dead-letters report completions man help" -f -a "report" -d 'Write a performance report of a range as one self-contained HTML file, asked of the running daemon (at the configured `listen` address, with its token): `zen-watcher report --from -24h > report.html`'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand help; and not __fish_seen_subcommand_from run normalize config dead-letters report completions man help" -f -a "completions" -d 'Print a shell\'s completion script: `zen-watcher completions bash > /etc/bash_completion.d/zen-watcher` (also in `deploy/completions/`)'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand help; and not __fish_seen_subcommand_from run normalize config dead-letters report completions man help" -f -a "man" -d 'Print the manual page (roff): `zen-watcher man > zen-watcher.1` (also `deploy/man/`)'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand help; and not __fish_seen_subcommand_from run normalize config dead-letters report completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Validate a configuration file without starting anything'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "print" -d 'Print the effective configuration: defaults, the file, `ZEN_*` variables and flags'
complete -c zen-watcher -n "__fish_zen_watcher_using_subcommand help; and __fish_seen_subcommand_from dead-letters" -f -a "replay" -d 'Ask the running daemon (at the configured `listen` address, with its token) to submit every dead letter\'s events again; each letter is removed once its events are stored. Prints what was replayed; exits 1 when letters are left'
