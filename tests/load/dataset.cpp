// make_dataset() and mixed_workload(): a directory of known content, built
// through libunit's bulk import and published, and requests over it.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include "load.hpp"
#include "unit/csv.hpp"
#include "unit/primary.hpp"

namespace unit::load {

namespace {

constexpr std::size_t max_sample = 100'000;  // addresses kept in a Dataset, per kind

std::string unit_name(std::size_t index, std::size_t units) {
    std::size_t width = std::max<std::size_t>(4, std::to_string(units).size());
    return fmt::format("unit{:0{}}", index + 1, width);
}

std::string mailbox_address(std::size_t i, const std::vector<std::string>& domains) {
    return fmt::format("user{}@{}", i, domains[i % domains.size()]);
}

std::string alias_address(std::size_t i, const std::vector<std::string>& domains) {
    return fmt::format("alias{}@{}", i, domains[i % domains.size()]);
}

// "nobody" never names a mailbox or an alias.
std::string unknown_address(std::size_t i, const std::vector<std::string>& domains) {
    return fmt::format("nobody{}@{}", i, domains[i % domains.size()]);
}

void check_spec(const DatasetSpec& spec) {
    if (spec.domains.empty()) throw std::runtime_error("dataset: no domain");
    if (spec.units == 0) throw std::runtime_error("dataset: no unit");
    if (spec.mailboxes == 0) throw std::runtime_error("dataset: no mailbox");
    if (spec.aliases > 0 && (spec.units < 2 || spec.mailboxes < 2))
        throw std::runtime_error("dataset: aliases need two mailboxes on two units");
}

// Every object as an import file (csv.hpp). Mailbox i lives on unit
// i % units; alias j points at mailboxes 2j and 2j+1 (mod the count), which
// are on neighbouring units.
void write_import(const DatasetSpec& spec, const std::string& path) {
    std::ofstream out(path, std::ios::trunc);
    write_csv_row(out, {"kind", "address", "value", "state"});
    for (const auto& domain : spec.domains) write_csv_row(out, {"domain", domain, "", ""});
    for (std::size_t u = 0; u < spec.units; ++u) {
        std::string name = unit_name(u, spec.units);
        write_csv_row(out, {"unit", name, fmt::format("smtp:[{}.example]", name), "active"});
    }
    for (std::size_t i = 0; i < spec.mailboxes; ++i)
        write_csv_row(out, {"mailbox", mailbox_address(i, spec.domains), unit_name(i % spec.units, spec.units), "active"});
    for (std::size_t j = 0; j < spec.aliases; ++j) {
        std::string alias = alias_address(j, spec.domains);
        write_csv_row(out, {"alias", alias, mailbox_address((2 * j) % spec.mailboxes, spec.domains), ""});
        write_csv_row(out, {"alias", alias, mailbox_address((2 * j + 1) % spec.mailboxes, spec.domains), ""});
    }
    out.flush();
    if (!out) throw std::runtime_error(fmt::format("dataset: {}: cannot write", path));
}

// At most max_sample addresses, evenly spread over all of them.
Dataset sample(const DatasetSpec& spec) {
    Dataset data;
    std::size_t stride = std::max<std::size_t>(1, spec.mailboxes / max_sample);
    for (std::size_t i = 0; i < spec.mailboxes && data.existing.size() < max_sample; i += stride)
        data.existing.push_back(mailbox_address(i, spec.domains));
    for (std::size_t j = 0; j < spec.aliases && j < max_sample; ++j) data.aliases.push_back(alias_address(j, spec.domains));
    for (std::size_t i = 0; i < data.existing.size(); ++i) data.unknown.push_back(unknown_address(i, spec.domains));
    return data;
}

}  // namespace

Dataset make_dataset(const DatasetSpec& spec, const std::string& primary_path, const std::string& replica_path) {
    check_spec(spec);
    if (std::filesystem::exists(primary_path))
        throw std::runtime_error(fmt::format("dataset: {}: exists already", primary_path));
    auto primary = Primary::init(primary_path);
    if (!primary) throw std::runtime_error(fmt::format("dataset: {}", primary.error().message));

    std::string import_path = primary_path + ".import.csv";
    write_import(spec, import_path);
    std::ifstream in(import_path);
    auto imported = primary->import_csv(in, import_path);
    std::filesystem::remove(import_path);
    if (!imported) throw std::runtime_error(fmt::format("dataset: {}", imported.error().message));

    auto published = primary->publish(replica_path);
    if (!published) throw std::runtime_error(fmt::format("dataset: {}", published.error().message));
    return sample(spec);
}

std::vector<Request> mixed_workload(const Dataset& data, double unknown_share, std::size_t size) {
    if (data.existing.empty() || data.unknown.empty()) throw std::runtime_error("workload: the dataset has no addresses");
    std::mt19937_64 random(20240601);  // fixed: every run sends the same requests
    std::bernoulli_distribution unknown(std::clamp(unknown_share, 0.0, 1.0));
    std::bernoulli_distribution alias(data.aliases.empty() ? 0.0 : 0.05);
    auto pick = [&random](const std::vector<std::string>& from) -> const std::string& {
        return from[std::uniform_int_distribution<std::size_t>(0, from.size() - 1)(random)];
    };
    std::vector<Request> workload;
    workload.reserve(size);
    for (std::size_t i = 0; i < size; ++i) {
        Request r;
        // Half policy, a quarter each of the recipient and transportmx maps.
        switch (i % 4) {
        case 0:
        case 2: r.protocol = Protocol::Policy; break;
        case 1: r.protocol = Protocol::Socketmap, r.map = "recipient"; break;
        default: r.protocol = Protocol::Socketmap, r.map = "transportmx"; break;
        }
        if (unknown(random)) {
            r.key = pick(data.unknown);
        } else if (r.map != "transportmx" && alias(random)) {
            r.key = pick(data.aliases);  // transportmx of an alias is NOTFOUND: Postfix rewrites aliases first
            r.exists = true;
        } else {
            r.key = pick(data.existing);
            r.exists = true;
        }
        workload.push_back(std::move(r));
    }
    return workload;
}

}  // namespace unit::load
