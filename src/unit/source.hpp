// source.hpp: the directory as the provider's own system says it is, read
// by a sync source (unitctl sync: a CSV export, an LDAP directory) and
// compared with the primary (sync.hpp).
//
// A kind the source does not speak of is nullopt: the primary's objects of
// that kind are kept as they are (an LDAP tree that holds users but not the
// units they live on). A kind that is present, even empty, is the whole
// truth: what the primary has beyond it is removed.
//
// Values are as the source spells them: sync normalises addresses and
// domains (address.hpp) and checks every value (values.hpp) as import does.
// Plain data: no logging, nothing throws.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "unit/records.hpp"

namespace unit {

struct SourceDirectory {
    std::optional<std::vector<std::string>> domains;
    std::optional<std::vector<UnitRecord>> units;
    // State Active, Suspended or Disabled; Moving with moving_to when the
    // source itself tracks a move.
    std::optional<std::vector<MailboxRecord>> mailboxes;
    // One row per (address, target), "@domain" for a catch-all.
    std::optional<std::vector<AliasRecord>> aliases;
};

}  // namespace unit
