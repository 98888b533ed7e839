#include "common/replica_metrics.hpp"

#include <fmt/format.h>

namespace unit::common {

void ReplicaNotes::serving(std::string_view primary_id) {
    std::lock_guard lock(mutex_);
    if (view_.primary_id != primary_id) view_.primary_id = primary_id;
}

void ReplicaNotes::refused(std::string_view reason, std::time_t when, std::string detail) {
    std::lock_guard lock(mutex_);
    view_.refused_reason = reason;
    view_.refused_detail = std::move(detail);
    view_.last_refusal = when;
}

void ReplicaNotes::switched() {
    std::lock_guard lock(mutex_);
    view_.refused_reason.clear();
    view_.refused_detail.clear();
}

ReplicaNotes::View ReplicaNotes::view() const {
    std::lock_guard lock(mutex_);
    auto view = view_;
    view.pending = pending_.load(std::memory_order_relaxed);
    return view;
}

void replica_metrics(MetricsText& m, std::string_view prefix, const ReplicaNotes::View& view) {
    using Type = MetricsText::Type;
    const auto info = fmt::format("{}_replica_info", prefix);
    m.family(info, Type::Gauge, "The primary that published the snapshot answering now (meta.primary_id).");
    m.sample(info, 1, {{"primary_id", view.primary_id}});
    const auto pending = fmt::format("{}_replica_pending", prefix);
    m.family(pending, Type::Gauge, "1 while a replacement replica file is noticed, neither served nor refused yet.");
    m.sample(pending, view.pending ? 1 : 0);
    const auto refused = fmt::format("{}_replica_refused", prefix);
    m.family(refused, Type::Gauge, "The refusal holding now, by reason, until a switch follows (no sample: none).");
    if (!view.refused_reason.empty()) m.sample(refused, 1, {{"reason", view.refused_reason}});
    const auto last = fmt::format("{}_replica_last_refusal_timestamp_seconds", prefix);
    m.family(last, Type::Gauge, "When a replacement was last refused (0: never).");
    m.sample(last, static_cast<double>(view.last_refusal));
}

}  // namespace unit::common
