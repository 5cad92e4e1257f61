import Foundation
import Synchronization

/// The log file of one attempt: non-marker stdout lines and all of stderr, capped at
/// `runner.max_log_bytes` by keeping the first half and the last half, with one line
/// saying how much was left out between them.
public final class AttemptLog: Sendable {
    private struct State {
        var descriptor: Int32
        /// Bytes written to the file (the head).
        var written: Int64 = 0
        /// Lines past the head, trimmed to the last `tailCapacity` bytes at close.
        var tail: [UInt8] = []
        var dropped: Int64 = 0
        var pending: [UInt8] = []
    }

    public let path: String
    private let headCapacity: Int64
    private let tailCapacity: Int
    private let state: Mutex<State>

    public init(path: String, maxBytes: Int64) throws {
        self.path = path
        try WorkDirectory.make(String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]))
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        headCapacity = maxBytes / 2
        tailCapacity = Int(maxBytes - maxBytes / 2)
        state = Mutex(State(descriptor: descriptor))
    }

    /// Adds a line (without its newline).
    public func append(_ line: UnsafeRawBufferPointer) {
        state.withLock { state in
            let size = Int64(line.count + 1)
            if state.written + Int64(state.pending.count) + size <= headCapacity && state.tail.isEmpty {
                state.pending.append(contentsOf: line)
                state.pending.append(UInt8(ascii: "\n"))
                if state.pending.count >= 64 << 10 { Self.flush(&state) }
                return
            }
            state.tail.append(contentsOf: line)
            state.tail.append(UInt8(ascii: "\n"))
            // Trim now and then rather than on every line.
            if state.tail.count > 2 * tailCapacity + (64 << 10) { Self.trim(&state, to: tailCapacity) }
        }
    }

    public func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Writes what is buffered for the head, so the file shows progress while running.
    public func flush() {
        state.withLock { Self.flush(&$0) }
    }

    /// Writes the tail and closes the file.
    public func close() {
        state.withLock { state in
            Self.flush(&state)
            guard state.descriptor >= 0 else { return }
            if !state.tail.isEmpty {
                Self.trim(&state, to: tailCapacity)
                if state.dropped > 0 {
                    state.pending = Array("[supervisor: \(state.dropped) bytes of log left out here; max_log_bytes keeps the head and the tail]\n".utf8)
                }
                state.pending.append(contentsOf: state.tail)
                state.tail = []
                Self.flush(&state)
            }
            Glibc.close(state.descriptor)
            state.descriptor = -1
        }
    }

    private static func flush(_ state: inout State) {
        guard !state.pending.isEmpty, state.descriptor >= 0 else { return }
        state.pending.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(state.descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { break }
                offset += written
            }
        }
        state.written += Int64(state.pending.count)
        state.pending.removeAll(keepingCapacity: true)
    }

    /// Keeps the last `capacity` bytes of the tail, starting at a line.
    private static func trim(_ state: inout State, to capacity: Int) {
        guard state.tail.count > capacity else { return }
        var cut = state.tail.count - capacity
        if let newline = state.tail[cut...].firstIndex(of: UInt8(ascii: "\n")) { cut = newline + 1 }
        state.dropped += Int64(cut)
        state.tail.removeFirst(cut)
    }
}
