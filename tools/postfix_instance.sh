# tools/postfix_instance.sh: the configuration of a throwaway Postfix
# instance on loopback, one writer for examples/demo.sh and the integration
# tests (tests/integration/lib.sh), which source this file. Each caller
# appends its own lines to what these print.
# shellcheck shell=bash

# postfix_instance_dirs DIR: DIR/etc, queue and log (0755), and DIR/data
# (postfix's, 0700), which the two files below name.
postfix_instance_dirs() {
    mkdir -p "$1/etc" "$1/queue" "$1/data" "$1/log"
    chmod 0755 "$1" "$1/etc" "$1/queue" "$1/log"
    chown postfix:postfix "$1/data"
    chmod 0700 "$1/data"
}

# postfix_instance_main_cf DIR HOSTNAME DOMAIN BOUNCE TITLE: main.cf of an
# instance whose directories are under DIR (postfix_instance_dirs), named
# HOSTNAME in DOMAIN, that listens on 127.0.0.1 only, delivers nowhere
# (mail without a route gets BOUNCE, an error(8) text) and relays for
# 127.0.0.1 only. TITLE is its first comment line.
postfix_instance_main_cf() {
    cat <<EOT
# $5
compatibility_level = 3.6
queue_directory = $1/queue
data_directory = $1/data
maillog_file = $1/log/maillog
myhostname = $2
mydomain = $3
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtpd_banner = \$myhostname ESMTP
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
default_transport = error:5.7.1 $4
in_flow_delay = 0
delay_warning_time = 0
EOT
}

# postfix_instance_master_cf PORT TITLE: Debian's master.cf services with
# chroot off (the column after "unpriv"), and smtpd on 127.0.0.1:PORT only.
postfix_instance_master_cf() {
    cat <<EOT
# $2
127.0.0.1:$1 inet n  -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOT
}

# postfix_instance_smtpd_resolver CONFDIR: when the master.cf in CONFDIR
# defines the examples' "unitrewrite" service (smtpd's address resolver
# without transport_maps), points each of its smtpd inet services at it,
# as examples/mx/master.cf asks the administrator to do.
postfix_instance_smtpd_resolver() {
    local conf=$1 service
    [ -n "$(postconf -c "$conf" -M unitrewrite/unix 2>/dev/null)" ] || return 0
    for service in $(postconf -c "$conf" -M | awk '$2 == "inet" && $8 == "smtpd" { print $1 }'); do
        postconf -c "$conf" -P "$service/inet/rewrite_service_name=unitrewrite"
    done
}
