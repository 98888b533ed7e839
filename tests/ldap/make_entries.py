#!/usr/bin/env python3
"""make_entries.py N: LDIF for the test directory dc=example,dc=com.

N users uid=userI,ou=people (I = 0..N-1), inetOrgPerson with
  mail            userI@example.com (every 10th: userI@example.org)
  mailHost        unit(I % 3 + 1).hosts.example.com
  accountStatus   active, except every 50th: suspended, every 70th: disabled
                  (suspended wins), and every 90th has none
  mailAlternateAddress  alias.userI@example.net for every 5th
Besides: ou=lists with two lists (unitTestMailList), cn=limited (a user with
a size limit, see slapd.sh) and ou=elsewhere (a referral).
"""
import sys

n = int(sys.argv[1])
out = sys.stdout
out.write("""dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
o: example
dc: example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=lists,dc=example,dc=com
objectClass: organizationalUnit
ou: lists

dn: cn=limited,dc=example,dc=com
objectClass: person
cn: limited
sn: limited
userPassword: limited-secret

dn: ou=elsewhere,dc=example,dc=com
objectClass: referral
objectClass: extensibleObject
ou: elsewhere
ref: ldap://ldap.elsewhere.invalid/ou=elsewhere,dc=example,dc=com

dn: cn=sales,ou=lists,dc=example,dc=com
objectClass: unitTestMailList
cn: sales
mail: sales@example.com
mailForwardingAddress: user1@example.com
mailForwardingAddress: user2@example.com

dn: cn=partners,ou=lists,dc=example,dc=com
objectClass: unitTestMailList
cn: partners
mail: partners@example.com
mailForwardingAddress: someone@partner.invalid

""")
for i in range(n):
    domain = "example.org" if i % 10 == 0 else "example.com"
    lines = [
        f"dn: uid=user{i},ou=people,dc=example,dc=com",
        "objectClass: inetOrgPerson",
        "objectClass: inetLocalMailRecipient",
        "objectClass: unitTestMailUser",
        f"uid: user{i}",
        f"cn: User {i}",
        f"sn: {i}",
        f"mail: user{i}@{domain}",
        f"mailHost: unit{i % 3 + 1}.hosts.example.com",
    ]
    if i % 90 != 0 or i == 0:
        status = "suspended" if i % 50 == 0 and i else "disabled" if i % 70 == 0 and i else "active"
        lines.append(f"accountStatus: {status}")
    if i % 5 == 0:
        lines.append(f"mailAlternateAddress: alias.user{i}@example.net")
    out.write("\n".join(lines) + "\n\n")
