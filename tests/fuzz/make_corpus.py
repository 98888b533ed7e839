#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: tests/fuzz/corpus/TARGET/.

Each seed is small and stands for one case a parser must handle: valid
input as Postfix or unitctl produce it, the edges of the format, and the
errors. Run it again after changing a seed here; it rewrites each target's
directory from this list (the seeds are committed, fuzzing never writes
into them: run.sh fuzzes a copy).
"""
import pathlib
import shutil

HERE = pathlib.Path(__file__).resolve().parent


def crlf(text):
    return text.replace("\n", "\r\n")


# ---- policy_request: Postfix SMTP access policy delegation ------------------

RCPT = """request=smtpd_access_policy
protocol_state=RCPT
protocol_name=ESMTP
client_address=192.0.2.7
client_name=mail.example.net
client_port=40212
reverse_client_name=mail.example.net
server_address=192.0.2.1
server_port=25
helo_name=mail.example.net
sender=alice@example.net
recipient=Bob+tag@Example.COM
recipient_count=0
queue_id=
instance=123.456.7
size=0
etrn_domain=
stress=
sasl_method=
sasl_username=
sasl_sender=
ccert_subject=
ccert_issuer=
ccert_fingerprint=
ccert_pubkey_fingerprint=
encryption_protocol=TLSv1.3
encryption_cipher=TLS_AES_256_GCM_SHA384
encryption_keysize=256
policy_context=
compatibility_level=3.6
mail_version=3.7.11

"""

MINIMAL = "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=user@example.com\n\n"

policy_request = {
    "rcpt_postfix37": RCPT,
    "rcpt_crlf": crlf(RCPT),
    "minimal": MINIMAL,
    "pipelined_three": MINIMAL + RCPT.replace("Bob+tag", "carol") + MINIMAL.replace("user", "dave"),
    "vrfy": "request=smtpd_access_policy\nprotocol_state=VRFY\nrecipient=postmaster@example.com\n"
            "client_address=127.0.0.1\n\n",
    "data_state": "request=smtpd_access_policy\nprotocol_state=DATA\nrecipient=\nsender=\nqueue_id=4XyZ1r0abc\n"
                  "recipient_count=3\n\n",
    "end_of_message": "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nqueue_id=ABC123\nsize=1024\n\n",
    "null_sender": "request=smtpd_access_policy\nprotocol_state=RCPT\nsender=\nrecipient=user@example.com\n\n",
    "quoted_local": 'request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient="john doe"@example.com\n\n',
    "internal_form": "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=john doe@example.com\n\n",
    "utf8_recipient": "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=jörg@bücher.example\n"
                      "smtputf8=1\n\n",
    "ipv6_client": "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=2001:db8::25\n"
                   "client_name=unknown\nrecipient=user@[IPv6:2001:db8::1]\n\n",
    "value_with_equals": "request=smtpd_access_policy\nsender=a=b@example.net\nrecipient=x=y@example.com\n\n",
    "duplicate_attribute": "request=smtpd_access_policy\nrecipient=first@example.com\nrecipient=second@example.com\n\n",
    "empty_name": "=value\nrequest=smtpd_access_policy\n\n",
    "unknown_only": "foo=bar\nbaz=\n\n",
    "stray_empty_lines": "\n\n\r\n" + MINIMAL + "\n\n",
    "value_ends_in_cr": "request=smtpd_access_policy\r\nrecipient=user@example.com\r\r\n\r\n",
    "mixed_line_ends": "request=smtpd_access_policy\r\nprotocol_state=RCPT\nrecipient=user@example.com\r\n\n",
    "incomplete_request": "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=user@exa",
    "no_equals": "request=smtpd_access_policy\ngarbage line\n\n",
    "nul_byte": "request=smtpd_access_policy\nrecipient=user\0@example.com\n\n",
    "long_line": "request=smtpd_access_policy\nrecipient=" + "x" * 100 + "@example.com\n\n",
    "long_request": "".join(f"attribute_{i}=value number {i}\n" for i in range(20)) + "\n",
    "just_cr": "request=smtpd_access_policy\rrecipient=user@example.com\r\r",
    "sasl_login": "request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_method=PLAIN\nsasl_username=alice\n"
                  "sasl_sender=\nrecipient=bob@example.com\ninstance=a1.b2.c3\n\n",
}

# ---- netstring: Postfix socketmap framing -------------------------------------


def ns(payload):
    data = payload.encode() if isinstance(payload, str) else payload
    return str(len(data)).encode() + b":" + data + b","


netstring = {
    "empty_payload": ns(""),
    "hello": ns("hello"),
    "query_transportmx": ns("transportmx user@example.com"),
    "query_alias": ns("alias sales@example.com"),
    "query_domain": ns("domain example.com"),
    "two_queries": ns("transportmx a@example.com") + ns("domain example.net"),
    "reply_ok": ns("OK smtp:[unit1.example.com]"),
    "reply_notfound": ns("NOTFOUND "),
    "reply_temp": ns("TEMP directory unavailable"),
    "binary_payload": ns(b"\0,:\xff\r\n"),
    "limit_16": ns("x" * 16),
    "over_limit_17": ns("x" * 17),
    "leading_zero": b"05:hello,",
    "missing_comma": b"5:hello;",
    "non_digit_length": b"5a:hello,",
    "empty_length": b":,",
    "nine_digits": b"999999999:",
    "ten_digits": b"1234567890:",
    "over_postfix_limit": b"100001:",
    "incomplete_payload": b"10:abc",
    "length_only": b"12",
    "colon_in_payload": ns("a:b:c"),
    "query_then_garbage": ns("domain example.com") + b"x",
}

# ---- address: recipient normalisation -------------------------------------------

address = {
    "plain": "user@example.com",
    "mixed_case": "User.Name@Example.COM",
    "extension_plus": "user+tag@example.com",
    "extension_minus": "user-tag@example.com",
    "extension_empty": "user+@example.com",
    "delimiter_first": "+tag@example.com",
    "angle_brackets": "<user@example.com>",
    "trailing_dot": "user@example.com.",
    "two_trailing_dots": "user@example.com..",
    "quoted_dot_atom": '"user"@example.com',
    "quoted_space": '"john doe"@example.com',
    "internal_space": "john doe@example.com",
    "quoted_pair": '"a\\"b\\\\c"@example.com',
    "quoted_at": '"a@b"@example.com',
    "two_ats": "a@b@example.com",
    "empty_quoted": '""@example.com',
    "dots_not_atom": "a..b@example.com",
    "leading_dot": ".a@example.com",
    "literal_ipv4": "user@[192.0.2.1]",
    "literal_ipv6": "user@[IPv6:2001:DB8::1]",
    "literal_general": "user@[tag:content]",
    "literal_bad": "user@[999.1.1.1]",
    "idn_ulabel": "user@bücher.example",
    "idn_alabel": "user@xn--bcher-kva.example",
    "idn_sharp_s": "user@straße.de",
    "utf8_local": "jörg@example.com",
    "postmaster": "Postmaster+x@example.com",
    "mailer_daemon": "MAILER-DAEMON@example.com",
    "owner_list": "owner-list@example.com",
    "list_request": "list-request@example.com",
    "underscore_domain": "user@exa_mple.com",
    "bad_domain_char": "user@exa!mple.com",
    "label_63": "user@" + "a" * 63 + ".example",
    "label_64": "user@" + "a" * 64 + ".example",
    # 66 + 1 + 253 (the longest domain): the longest address accepted.
    "length_320": "u" * 66 + "@" + ".".join(["d" * 63] * 3 + ["d" * 61]),
    "length_321": "u" * 67 + "@" + ".".join(["d" * 63] * 3 + ["d" * 61]),
    "no_at": "user.example.com",
    "empty_local": "@example.com",
    "empty_domain": "user@",
    "control_char": "us\ter@example.com",
    "invalid_utf8": b"\xffuser@example.com",
    "overlong_utf8": b"\xc0\xafuser@example.com",
    "surrogate_utf8": b"\xed\xa0\x80@example.com",
}

# ---- csv: the import/export file format -------------------------------------------

SAMPLE = """kind,address,value,state
domain,example.com,,
domain,xn--bcher-kva.example,,
unit,unit1,smtp:[unit1.example.com],active
unit,unit2,lmtp:[10.0.0.2]:24,draining
unit,unit3,smtp:[unit3.example.com],down
mailbox,alice@example.com,unit1,active
mailbox,bob@example.com,unit2,suspended
mailbox,carol@example.com,unit1,disabled
mailbox,dave@example.com,unit1,moving:unit2
mailbox,erik@xn--bcher-kva.example,unit3,
alias,sales@example.com,alice@example.com,
alias,sales@example.com,bob@example.com,
alias,@xn--bcher-kva.example,erik@xn--bcher-kva.example,
alias,friend@example.com,Someone@Elsewhere.ORG,
"""

csv = {
    "sample": SAMPLE,
    "sample_crlf": crlf(SAMPLE),
    "no_final_newline": "kind,address,value,state\ndomain,example.com,,",
    "blank_last_line": "kind,address,value,state\ndomain,example.com,,\n\n",
    "blank_middle_line": "kind,address,value\n\ndomain,example.com,\n",
    "quoted_fields": 'kind,address,value,state\nalias,"sales@example.com","a@example.com",""\n',
    "quoted_comma_quote": 'a,"b,c","d ""e"" f",g\n',
    "quoted_newline": 'a,"line one\nline two",c\n"x\r\ny",z\n',
    "only_empty_quoted": '""\n',
    "empty_fields": ",,,\n,\n",
    "utf8": "kind,address,value,state\nmailbox,jörg@bücher.example,unit1,\n",
    "bare_cr": "a,b\rc,d\n",
    "text_after_quote": '"a"b,c\n',
    "quote_in_unquoted": 'ab"c,d\n',
    "unterminated_quote": 'a,"b,c\nd,e\n',
    "nul_byte": "a,b\0,c\n",
    "ragged_rows": "a\nb,c\nd,e,f,g,h\n",
    "empty": "",
}

# ---- csv_import: Primary::import_csv ------------------------------------------------

HEAD = "kind,address,value,state\n"
BASE = HEAD + "domain,example.com,,\nunit,unit1,smtp:[unit1.example.com],active\nunit,unit2,smtp:[unit2.example.com],\n"

csv_import = {
    "sample": SAMPLE,
    "sample_crlf": crlf(SAMPLE),
    "minimal": BASE + "mailbox,user@example.com,unit1,active\n",
    "three_columns": "kind,address,value\ndomain,example.com,\nunit,u1,smtp:[u1.example.com]\n"
                     "mailbox,a@example.com,u1\n",
    "out_of_order": HEAD + "alias,x@example.com,a@example.com,\nmailbox,a@example.com,u1,\n"
                    "unit,u1,smtp:[u1],\ndomain,example.com,,\n",
    "normalised_on_import": BASE + "domain,Bücher.Example.,,\nmailbox,\"\"\"John.Doe\"\"@Example.COM\",unit1,\n"
                            "mailbox,jörg@bücher.example,unit2,\nalias,<Sales@EXAMPLE.com>,john.doe@example.com,\n",
    "quoted_local": BASE + 'mailbox,"""john doe""@example.com",unit1,\n',
    "catch_all": BASE + "mailbox,a@example.com,unit1,\nalias,@example.com,a@example.com,\n",
    "external_target_case": BASE + "alias,fwd@example.com,Some.One@Other.ORG,\n",
    # normalised, the target's local part would need quoting: refused as given
    "alias_target_needs_quoting": BASE + "mailbox,a@example.com,unit1,\nalias,c@example.com,m.@other.example,\n",
    "alias_chain": BASE + "mailbox,a@example.com,unit1,\nalias,b@example.com,a@example.com,\n"
                   "alias,c@example.com,b@example.com,\n",
    "moving": BASE + "mailbox,a@example.com,unit1,moving:unit2\n",
    "literal_domain": HEAD + "domain,[192.0.2.1],,\nunit,u1,smtp:[u1],\nmailbox,a@[192.0.2.1],u1,\n",
    "bad_header": "kind,address\ndomain,example.com\n",
    "unknown_kind": BASE + "group,g@example.com,,\n",
    "domain_not_served": BASE + "mailbox,a@example.org,unit1,\n",
    "unknown_unit": BASE + "mailbox,a@example.com,unit9,\n",
    "duplicate_mailbox": BASE + "mailbox,a@example.com,unit1,\nmailbox,A@Example.com,unit2,\n",
    "move_to_itself": BASE + "mailbox,a@example.com,unit1,moving:unit1\n",
    "bad_state": BASE + "mailbox,a@example.com,unit1,sleeping\n",
    "bad_unit_value": HEAD + "unit,u1,no-colon,\n",
    "bad_nexthop": HEAD + "unit,u1,smtp:a b,\n",
    "alias_cycle": BASE + "alias,a@example.com,b@example.com,\nalias,b@example.com,a@example.com,\n",
    "alias_with_state": BASE + "mailbox,a@example.com,unit1,\nalias,b@example.com,a@example.com,active\n",
    "too_many_fields": BASE + "mailbox,a@example.com,unit1,active,extra\n",
    "duplicate_domain": BASE + "domain,EXAMPLE.com.,,\n",
}

# ---- sync: read_csv_source and Primary::sync into fuzz_sync.cpp's seeded database ------


def with_trailer(text):
    """The export file of `text`: its rows, then the trailer counting them."""
    import csv as csv_module
    import io
    body = text if text == "" or text.endswith("\n") else text + "\n"
    rows = [r for r in csv_module.reader(io.StringIO(body)) if r]
    return body + f"end,,{max(len(rows) - 1, 0)},\n"


SEEDED = (HEAD + "domain,my.com,,\nunit,u1,smtp:[u1.my.com],active\nunit,u2,lmtp:[10.0.0.2]:24,draining\n"
          "mailbox,ann@my.com,u1,active\nmailbox,bob@my.com,u1,moving:u2\nmailbox,cat@my.com,u2,suspended\n"
          "alias,sales@my.com,ann@my.com,\n")

sync = {name: with_trailer(text) for name, text in csv_import.items()}
sync.update({
    "same": with_trailer(SEEDED),
    "moves": with_trailer(SEEDED.replace("ann@my.com,u1,active", "ann@my.com,u2,active")
                          .replace("bob@my.com,u1,moving:u2", "bob@my.com,u2,active")),
    "states": with_trailer(SEEDED.replace("cat@my.com,u2,suspended", "cat@my.com,u1,disabled")
                           .replace("alias,sales@my.com,ann@my.com,\n", "alias,sales@my.com,Boss@example.org,\n")),
    "units": with_trailer(SEEDED.replace("unit,u2,lmtp:[10.0.0.2]:24,draining\n", "")
                          .replace("bob@my.com,u1,moving:u2", "bob@my.com,u1,active")
                          .replace("cat@my.com,u2,suspended", "cat@my.com,u1,suspended")
                          + "unit,u3,smtp:[u3],down\nmailbox,dan@my.com,u3,\n"),
    "domains": with_trailer(SEEDED.replace("domain,my.com,,\n", "domain,my.com,,\ndomain,new.org,,\n")
                            + "mailbox,Eve@NEW.org,u1,\n"),
    "empty_source": with_trailer(HEAD),
    "truncated": SEEDED,
    "wrong_count": SEEDED + "end,,3,\n",
    "row_after_end": with_trailer(SEEDED) + "mailbox,x@my.com,u1,\n",
})

# ---- route_header: unitmilter's X-Unit-Route logic -------------------------------------

MESSAGE = """Received: from mx1.example.com (mx1.example.com [192.0.2.1])
\tby unit1.example.com (Postfix) with ESMTP id 4XyZ1r0abc
\tfor <alice@example.com>; Mon,  3 Jun 2024 10:00:00 +0000 (UTC)
From: Bob <bob@example.net>
To: alice@example.com
Subject: hello
Message-ID: <1@example.net>
"""

route_header = {
    "no_route": MESSAGE,
    "one_route": MESSAGE + "X-Unit-Route: hop=1; gen=42; units=unit1; by=mx1.example.com\n",
    "folded_route": MESSAGE + "X-Unit-Route: hop=2; gen=42; units=unit1,\n\tunit2,unit3;\n\tby=mx1.example.com\n",
    "two_routes": MESSAGE + "X-Unit-Route: hop=2; gen=7; units=u1; by=a\nX-Unit-Route: hop=5; gen=9; units=u2; by=b\n",
    "lowercase_name": MESSAGE + "x-unit-route: HOP=3;GEN=1;UNITS=u1;BY=mx\n",
    "at_max_hops": MESSAGE + "X-Unit-Route: hop=24; gen=100; units=unit1; by=mx1\n",
    "past_twice_max": MESSAGE + "X-Unit-Route: hop=48; gen=100; units=unit1; by=mx1\n",
    "huge_hop": MESSAGE + "X-Unit-Route: hop=99999999999999999999999; gen=99999999999999999999999999\n",
    "garbage_hop": MESSAGE + "X-Unit-Route: hop=3x; gen=-1; units=; by=\n",
    "leading_zeros": "X-Unit-Route: hop=007; gen=0042\n",
    "forged_prefixed": MESSAGE + "X-Unit-Route: hop=1\nX-Unit-Unit: unit9\nX-UNIT-unit: unit8\nX-Unit-: x\n",
    "units_with_addresses": "X-Unit-Route: hop=1; units=u1,user@example.com,a b,<x>,u-2_b.c,"
                            + "u" * 65 + "\n",
    "by_literal": "X-Unit-Route: hop=1; gen=3; units=u1; by=[192.0.2.1]\n",
    "by_with_junk": "X-Unit-Route: hop=1; by=mx1@evil;\x7f\x01é\n",
    "empty_values": "X-Unit-Route:\nX-Unit-Route: \nX-Unit-Route: ;;;===;;\n",
    "no_colon": "X-Unit-Route\nSubject\n\tcontinued\n",
    "many_units": "X-Unit-Route: hop=1; gen=1; units="
                  + ",".join(f"unit{i:03d}.example.com" for i in range(40)) + "; by=" + "h" * 200 + "\n",
    "continuation_first": "\tno header before\nX-Unit-Route: hop=1\n",
    "crlf": crlf(MESSAGE + "X-Unit-Route: hop=1; gen=42; units=unit1; by=mx1.example.com\n"),
    # More distinct prefixed names than HeaderScan remembers (max_stripped_limit).
    "overflow_names": "".join(f"X-Unit-{i:x}:\n" for i in range(1010)),
    # A flood of one name: past every max_stripped, by occurrences.
    "flood_one_name": MESSAGE + "X-Unit-Route: hop=1\n" * 120,
    # A trusted peer's flood of routes: the extra ones kept past max_stripped.
    "flood_routes": "".join(f"X-Unit-Route: hop={i % 9}; gen={i}\n" for i in range(40)) + "Subject: x\n",
}

# ---- printable: the escaping of every client value in a log line ------------------------
# The first byte is the cut (max), the rest the value.

printable = {
    "plain": b"\x40alice@example.com",
    "controls": b"\x10a\r\nunitpolicy[1]: forged\x1b[2J\x7f\x00",
    "backslash_escape": b"\x10a\\x0ab\\",
    "utf8": "\x20jörg@bücher.example € 📧".encode(),
    "c1_and_bad_utf8": b"\x20\xc2\x9b2J \xc0\xaf \xed\xa0\x80 \xff\xfe \xe2\x82",
    "cut_in_a_character": b"\x03\xc3\xa9t\xc3\xa9",
    "long": b"\xff" + b"q" * 8000,
}

CORPORA = {
    "policy_request": policy_request,
    "netstring": netstring,
    "address": address,
    "csv": csv,
    "csv_import": csv_import,
    "sync": sync,
    "route_header": route_header,
    "printable": printable,
}


def main():
    for target, seeds in CORPORA.items():
        directory = HERE / "corpus" / target
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        for name, content in seeds.items():
            data = content.encode() if isinstance(content, str) else content
            (directory / name).write_bytes(data)
        print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
