import CCompression
import Foundation

/// Request bodies as clients compress them: `Content-Encoding: gzip`, `deflate` (zlib or raw)
/// and `br` (sentry-python uses brotli when its module is installed). Output is capped, so a
/// small "zip bomb" cannot take the server's memory.
public enum Decompression {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case unsupported(String)
        case corrupt(String)
        case tooLarge(limit: Int)

        public var description: String {
            switch self {
            case .unsupported(let e): "unsupported Content-Encoding \"\(e)\" (gzip, deflate, br and identity are accepted)"
            case .corrupt(let e): "the body is not valid \(e) data"
            case .tooLarge(let limit): "the body is larger than \(limit) bytes once decompressed"
            }
        }
    }

    /// Decodes `data` per the `Content-Encoding` header value (nil or `identity`: as it is).
    public static func decode(_ data: [UInt8], encoding: String?, limit: Int) throws(Failure) -> [UInt8] {
        let name = (encoding ?? "identity").trimmingCharacters(in: .whitespaces).lowercased()
        switch name {
        case "", "identity":
            guard data.count <= limit else { throw .tooLarge(limit: limit) }
            return data
        case "gzip", "x-gzip": return try inflate(data, windowBits: 15 + 16, name: "gzip", limit: limit)
        case "deflate":
            // HTTP's "deflate" is zlib-wrapped, but some clients send raw deflate; accept both.
            // Only data that is not zlib is tried as raw: zlib that inflates past the limit is
            // a bomb (413), not a reason to read it again as something else (and call it corrupt).
            switch Result(catching: { () throws(Failure) -> [UInt8] in try inflate(data, windowBits: 15, name: "deflate", limit: limit) }) {
            case .success(let zlib): return zlib
            case .failure(.tooLarge(let limit)): throw .tooLarge(limit: limit)
            case .failure: return try inflate(data, windowBits: -15, name: "deflate", limit: limit)
            }
        case "br": return try brotli(data, limit: limit)
        default: throw .unsupported(name)
        }
    }

    private static func inflate(_ input: [UInt8], windowBits: Int32, name: String, limit: Int) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { throw .corrupt(name) }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var status: Int32 = Z_OK
        var failure: Failure?
        input.withUnsafeBufferPointer { source in
            stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
            stream.avail_in = uInt(source.count)
            repeat {
                chunk.withUnsafeMutableBufferPointer { buffer in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = uInt(buffer.count)
                    status = CCompression.inflate(&stream, Z_NO_FLUSH)
                    let produced = buffer.count - Int(stream.avail_out)
                    output.append(contentsOf: buffer[0..<produced])
                }
                if output.count > limit { failure = .tooLarge(limit: limit); return }
                if status == Z_BUF_ERROR && stream.avail_in == 0 { failure = .corrupt(name); return }  // truncated
                if status != Z_OK && status != Z_STREAM_END { failure = .corrupt(name); return }
            } while status != Z_STREAM_END
        }
        if let failure { throw failure }
        return output
    }

    private static func brotli(_ input: [UInt8], limit: Int) throws(Failure) -> [UInt8] {
        guard let state = BrotliDecoderCreateInstance(nil, nil, nil) else { throw .corrupt("brotli") }
        defer { BrotliDecoderDestroyInstance(state) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var failure: Failure?
        input.withUnsafeBufferPointer { source in
            var availableIn = source.count
            var nextIn = source.baseAddress
            while true {
                var result = BROTLI_DECODER_RESULT_ERROR
                chunk.withUnsafeMutableBufferPointer { buffer in
                    var availableOut = buffer.count
                    var nextOut = buffer.baseAddress
                    result = BrotliDecoderDecompressStream(state, &availableIn, &nextIn, &availableOut, &nextOut, nil)
                    output.append(contentsOf: buffer[0..<(buffer.count - availableOut)])
                }
                if output.count > limit { failure = .tooLarge(limit: limit); return }
                switch result {
                case BROTLI_DECODER_RESULT_SUCCESS: return
                case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT: continue
                default: failure = .corrupt("brotli"); return  // an error, or input that ends too soon
                }
            }
        }
        if let failure { throw failure }
        return output
    }
}
