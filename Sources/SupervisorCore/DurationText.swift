/// Durations as written in the config and on the command line: an integer and one of
/// `ms`, `s`, `m`, `h`, `d` (SPEC section 3), e.g. `"250ms"`, `"5m"`, `"7d"`.
public enum DurationText {
    public struct InvalidDuration: Error, CustomStringConvertible {
        public let text: String
        public var description: String {
            "\"\(text)\" is not a duration (use an integer with ms, s, m, h or d, e.g. \"30s\")"
        }
    }

    public static func parse(_ text: String) throws(InvalidDuration) -> Duration {
        let units: [(suffix: String, milliseconds: Int64)] = [
            ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000),
        ]
        for unit in units where text.hasSuffix(unit.suffix) {
            let number = text.dropLast(unit.suffix.count)
            // "5ms" also ends in "s": only accept a suffix that leaves a plain integer.
            guard !number.isEmpty, number.allSatisfy(\.isASCIIDigit), let count = Int64(number),
                count <= Int64.max / unit.milliseconds
            else { continue }
            return .milliseconds(count * unit.milliseconds)
        }
        throw InvalidDuration(text: text)
    }
}

/// Sizes as written in the config: an integer number of bytes, or an integer with
/// `K`, `M` or `G` (powers of 1024).
public enum ByteSizeText {
    public struct InvalidSize: Error, CustomStringConvertible {
        public let text: String
        public var description: String {
            "\"\(text)\" is not a size (use bytes, or an integer with K, M or G, e.g. \"10M\")"
        }
    }

    public static func parse(_ text: String) throws(InvalidSize) -> Int64 {
        let multipliers: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var number = Substring(text)
        var multiplier: Int64 = 1
        if let last = text.last, let unit = multipliers[last] {
            number = number.dropLast()
            multiplier = unit
        }
        guard !number.isEmpty, number.allSatisfy(\.isASCIIDigit), let count = Int64(number),
            count <= Int64.max / multiplier
        else { throw InvalidSize(text: text) }
        return count * multiplier
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
