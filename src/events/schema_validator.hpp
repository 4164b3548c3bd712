#pragma once

// JSON Schema (draft 7) validation of event messages against the files in schemas/.
// The hot path uses the hand-written parsers in events.hpp; this exists so tests (and
// tooling) can prove that what we produce matches the published contract.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace taskstream::events {

class SchemaValidator final {
public:
    // Throws std::runtime_error if the file cannot be read, is not JSON, or is not a
    // schema valijson can compile.
    explicit SchemaValidator(const std::filesystem::path& schema_file);
    ~SchemaValidator();

    SchemaValidator(const SchemaValidator&) = delete;
    SchemaValidator& operator=(const SchemaValidator&) = delete;
    SchemaValidator(SchemaValidator&&) noexcept;
    SchemaValidator& operator=(SchemaValidator&&) noexcept;

    // kind: "task-event" | "task-update" | "notification-request"; loads
    // TASKSTREAM_SCHEMA_DIR/<kind>.schema.json. Throws std::invalid_argument otherwise.
    [[nodiscard]] static SchemaValidator for_topic_kind(std::string_view kind);

    // One "<path>: <problem>" line per violation; empty means valid. Thread-safe.
    [[nodiscard]] std::vector<std::string> validate(const nlohmann::json& document) const;

    [[nodiscard]] const std::filesystem::path& schema_file() const noexcept { return schema_file_; }

private:
    struct Impl;
    std::filesystem::path schema_file_;
    // Pimpl keeps valijson (and the exception mode it must be compiled with) out of
    // every translation unit that includes this header.
    std::unique_ptr<Impl> impl_;
};

}  // namespace taskstream::events
