import Foundation
import SupervisorRunner
import Synchronization
import Testing

@Suite("output lines")
struct OutputLinesTests {
    /// What one stream handed over: its lines (with their full lengths) and how it ended.
    final class Received: Sendable {
        let lines = Mutex<[(text: String, length: Int)]>([])
        let ends = Mutex(0)
        let ended: AsyncStream<Void>
        let end: AsyncStream<Void>.Continuation

        init() {
            (ended, end) = AsyncStream.makeStream(of: Void.self)
        }

        func start(_ descriptor: Int32) {
            OutputLines.start(
                descriptor: descriptor,
                onLine: { [self] line in
                    let text = String(decoding: line.bytes.prefix(16), as: UTF8.self)
                    lines.withLock { $0.append((text, line.length)) }
                },
                onChunk: {},
                onEnd: { [self] in
                    ends.withLock { $0 += 1 }
                    end.yield()
                    end.finish()
                })
        }
    }

    @Test("many streams read at once on one thread: lines split across writes are joined, overlong ones cut, each stream ends once")
    func streams() async throws {
        let count = 24
        var writers: [Int32] = []
        var received: [Received] = []
        for _ in 0..<count {
            var ends: [Int32] = [0, 0]
            #expect(pipe(&ends) == 0)
            let stream = Received()
            stream.start(ends[0])
            writers.append(ends[1])
            received.append(stream)
        }
        func send(_ text: String, to index: Int) {
            let bytes = Array(text.utf8)
            var written = 0
            while written < bytes.count {
                let count = bytes[written...].withUnsafeBytes { write(writers[index], $0.baseAddress, $0.count) }
                #expect(count > 0)
                written += max(count, 0)
            }
        }
        // Interleaved across streams, with lines cut mid-way between writes.
        for index in 0..<count {
            send("first \(index)\r\nsec", to: index)
        }
        for index in 0..<count {
            send("ond \(index)\n", to: index)
        }
        // A line over the cap is cut at it, keeping its full length; written from a
        // thread of its own, as the pipe holds less than the line.
        let long = OutputLines.maxLineBytes + 1000
        let longWriter = Thread { [writers] in
            let line = [UInt8](repeating: UInt8(ascii: "x"), count: long) + [UInt8(ascii: "\n")]
            var written = 0
            while written < line.count {
                let count = line[written...].withUnsafeBytes { write(writers[0], $0.baseAddress, $0.count) }
                if count <= 0 { break }
                written += count
            }
            close(writers[0])
        }
        longWriter.start()
        for index in 1..<count {
            send("last without newline", to: index)
            close(writers[index])
        }
        for stream in received {
            for await _ in stream.ended {}
        }

        for (index, stream) in received.enumerated() {
            let lines = stream.lines.withLock { $0 }
            #expect(stream.ends.withLock { $0 } == 1)
            #expect(lines.count == 3, "\(index): \(lines.map(\.text))")
            guard lines.count == 3 else { continue }
            #expect(lines[0].text == "first \(index)" && lines[0].length == "first \(index)\r".utf8.count)
            #expect(lines[1].text == "second \(index)")
            if index == 0 {
                #expect(lines[2].text == String(repeating: "x", count: 16) && lines[2].length == long)
            } else {
                #expect(lines[2].text == "last without new" && lines[2].length == 20)
            }
        }
    }
}
