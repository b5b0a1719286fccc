using Microsoft.AspNetCore.Http.Features;

namespace Escrow.Api.Hosting;

/// <summary>
/// Every request body is read here, once, under its endpoint's size limit, before any handler sees it: the server's
/// own limit (<see cref="IHttpMaxRequestBodySizeFeature"/>) is set first and the read stops one byte past the limit,
/// so a body without Content-Length (chunked) is cut there instead of being buffered whole. A JSON body's strings are
/// then checked for NUL and unpaired surrogates, which PostgreSQL's text refuses and no honest client sends: the API
/// refuses them (400 naming the field); Postmark's mail is cleaned (each becomes U+FFFD) so a reply is never lost;
/// Stripe's signed events are left byte for byte as signed (the store cleans what it writes).
/// </summary>
public sealed class RequestBodyGuard(RequestDelegate next, IOptions<PostmarkOptions> postmark)
{
    public const string UnsafeTextMessage = "Text must not contain NUL characters or unpaired UTF-16 surrogates.";

    private enum TextPolicy
    {
        Refuse,
        Clean,
        AsSigned,
    }

    public async Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        var (limit, policy) = RuleFor(request.Path);
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
        {
            feature.MaxRequestBodySize = limit;
        }
        if (request.ContentLength is not > 0 && request.Headers.TransferEncoding.Count == 0)
        {
            await next(context);
            return;
        }
        if (request.ContentLength > limit)
        {
            await TooLarge(limit).ExecuteAsync(context);
            return;
        }
        var body = await ReadBoundedAsync(request, limit, context.RequestAborted);
        if (body is null)
        {
            await TooLarge(limit).ExecuteAsync(context);
            return;
        }
        if (policy != TextPolicy.AsSigned && request.HasJsonContentType() && FirstUnsafeString(body, clean: policy == TextPolicy.Clean) is { } field)
        {
            await Problems.Validation(new Dictionary<string, string[]> { [field] = [UnsafeTextMessage] }).ExecuteAsync(context);
            return;
        }
        request.Body = new MemoryStream(body, writable: false);
        request.Headers.Remove("Transfer-Encoding");
        request.ContentLength = body.Length;
        await next(context);
    }

    private (long Limit, TextPolicy Policy) RuleFor(PathString path) =>
        path.StartsWithSegments("/webhooks/postmark") ? (postmark.Value.InboundMaxBytes, TextPolicy.Clean)
        : path.StartsWithSegments("/webhooks/stripe") ? (JsonBody.BodyBytesMax, TextPolicy.AsSigned)
        : (JsonBody.BodyBytesMax, TextPolicy.Refuse);

    private static Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult TooLarge(long limit) =>
        Problems.Make(StatusCodes.Status413PayloadTooLarge, "Body too large", $"The body may be at most {limit} bytes.");

    /// <summary>The body, or null once it passes the limit (nothing past limit + one read is taken from the client).</summary>
    private static async Task<byte[]?> ReadBoundedAsync(HttpRequest request, long limit, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await request.Body.ReadAsync(chunk, cancellationToken);
                if (read == 0)
                {
                    return buffer.ToArray();
                }
                buffer.Write(chunk, 0, read);
                if (buffer.Length > limit)
                {
                    return null;
                }
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return null;
        }
    }

    /// <summary>
    /// The top-level field whose string (value or property name) holds an escaped NUL or an unpaired surrogate, or
    /// null. With <paramref name="clean"/> each such escape is overwritten in place by <c>\ufffd</c> (the same six
    /// bytes) and null is returned. A body that is not valid JSON is left to its endpoint, which refuses it.
    /// </summary>
    public static string? FirstUnsafeString(byte[] json, bool clean)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 64 });
        string? topField = null;
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 1)
                {
                    topField = reader.GetString();
                }
                if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped && !reader.HasValueSequence)
                {
                    var start = (int)reader.TokenStartIndex + 1;
                    if (CleanEscapes(json.AsSpan(start, reader.ValueSpan.Length), clean) && !clean)
                    {
                        return topField ?? "body";
                    }
                }
            }
        }
        catch (JsonException)
        {
            return null;
        }
        return null;
    }

    /// <summary>Whether the raw string holds an escaped NUL or unpaired surrogate; overwritten by \ufffd when asked.</summary>
    private static bool CleanEscapes(Span<byte> raw, bool clean)
    {
        var found = false;
        var pendingHigh = -1;
        for (var i = 0; i < raw.Length; i++)
        {
            var unit = -1;
            if (raw[i] == (byte)'\\')
            {
                if (raw[i + 1] == (byte)'u')
                {
                    unit = Convert.ToInt32(System.Text.Encoding.ASCII.GetString(raw.Slice(i + 2, 4)), 16);
                }
            }
            if (unit is >= 0xDC00 and <= 0xDFFF && pendingHigh >= 0)
            {
                pendingHigh = -1;
                i += 5;
                continue;
            }
            if (pendingHigh >= 0)
            {
                found |= Replace(raw, pendingHigh, clean);
                pendingHigh = -1;
            }
            if (unit is >= 0xD800 and <= 0xDBFF)
            {
                pendingHigh = i;
            }
            else if (unit is 0 or (>= 0xDC00 and <= 0xDFFF))
            {
                found |= Replace(raw, i, clean);
            }
            // An escape is skipped whole (\uXXXX is six bytes, \n and the like two).
            i += unit >= 0 ? 5 : raw[i] == (byte)'\\' ? 1 : 0;
        }
        if (pendingHigh >= 0)
        {
            found |= Replace(raw, pendingHigh, clean);
        }
        return found;
    }

    private static bool Replace(Span<byte> raw, int at, bool clean)
    {
        if (clean)
        {
            "\\ufffd"u8.CopyTo(raw[at..]);
        }
        return true;
    }
}
