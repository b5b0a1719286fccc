using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;

namespace Escrow.Sandbox;

/// <summary>Maps the Postmark emulator under <c>/_sandbox/postmark</c>.</summary>
public static class PostmarkSandboxEndpoints
{
    public const string BasePath = "/_sandbox/postmark";

    private static readonly JsonSerializerOptions PostmarkJson = new()
    {
        PropertyNameCaseInsensitive = true,
    };

    public static IEndpointRouteBuilder MapPostmarkSandbox(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var group = endpoints.MapGroup(BasePath).ExcludeFromDescription();

        group.MapPost("/email", SendAsync);
        group.MapGet("/messages/outbound", SearchOutbound);
        group.MapGet("/outbox", (PostmarkSandbox s) => Results.Json(s.Outbox, SandboxControlJson.Options));
        group.MapPost("/inbound", PostmarkInboundSimulation.DeliverAsync);
        group.MapDelete("/outbox", (PostmarkSandbox s) =>
        {
            s.ClearOutbox();
            return Results.NoContent();
        });
        group.MapPost("/faults", async (HttpContext ctx, PostmarkSandbox s) =>
        {
            var (request, invalid) = await SandboxControlJson.ReadAsync<FaultRequest>(ctx).ConfigureAwait(false);
            if (invalid is not null)
            {
                return invalid;
            }

            PostmarkFaultKind? kind = request?.Kind switch
            {
                "server_error" => PostmarkFaultKind.ServerError,
                "rate_limited" => PostmarkFaultKind.RateLimited,
                "invalid_address" => PostmarkFaultKind.InvalidAddress,
                "inactive_recipient" => PostmarkFaultKind.InactiveRecipient,
                _ => null,
            };
            if (request is null || kind is null || request.Times is <= 0)
            {
                return Results.BadRequest(new { error = "Expected {\"kind\":\"server_error|rate_limited|invalid_address|inactive_recipient\",\"times\":N}." });
            }

            s.InjectFaults(kind.Value, request.Times ?? 1);
            return Results.Ok(new { kind = request.Kind, times = request.Times ?? 1 });
        });
        group.MapDelete("/faults", (PostmarkSandbox s) =>
        {
            s.ClearFaults();
            return Results.NoContent();
        });
        return endpoints;
    }

    private static async Task<IResult> SendAsync(HttpContext ctx, PostmarkSandbox sandbox, IOptions<SandboxOptions> options,
        TimeProvider time)
    {
        var expected = options.Value.PostmarkServerToken;
        var token = ctx.Request.Headers["X-Postmark-Server-Token"].ToString();
        var valid = expected.Length == 0 ? token.Length > 0 : string.Equals(token, expected, StringComparison.Ordinal);
        if (!valid)
        {
            return Error(401, 10, "Request does not contain a valid Server token.");
        }

        PostmarkEmailRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync<PostmarkEmailRequest>(ctx.Request.Body, PostmarkJson,
                ctx.RequestAborted).ConfigureAwait(false);
        }
        catch (JsonException)
        {
            return Error(422, 402, "Received invalid JSON input.");
        }

        if (request is null)
        {
            return Error(422, 402, "Received invalid JSON input.");
        }

        if (string.IsNullOrWhiteSpace(request.From))
        {
            return Error(422, 300, "Invalid email request: 'From' address is required.");
        }

        if (string.IsNullOrWhiteSpace(request.To))
        {
            return Error(422, 300, "Invalid email request: 'To' address is required.");
        }

        if (string.IsNullOrEmpty(request.HtmlBody) && string.IsNullOrEmpty(request.TextBody))
        {
            return Error(422, 300, "Invalid email request: Provide either email TextBody or HtmlBody or both.");
        }

        var now = time.GetUtcNow();
        var email = new SandboxEmail
        {
            To = request.To,
            From = request.From,
            Cc = request.Cc,
            Bcc = request.Bcc,
            ReplyTo = request.ReplyTo,
            Subject = request.Subject,
            TextBody = request.TextBody,
            HtmlBody = request.HtmlBody,
            Tag = request.Tag,
            MessageStream = request.MessageStream ?? "outbound",
            Headers = (request.Headers ?? [])
                .Where(h => !string.IsNullOrEmpty(h.Name))
                .GroupBy(h => h.Name!, StringComparer.OrdinalIgnoreCase)
                .ToDictionary(g => g.Key, g => g.Last().Value ?? string.Empty, StringComparer.OrdinalIgnoreCase),
            Metadata = request.Metadata ?? new Dictionary<string, string>(),
            MessageId = Guid.NewGuid().ToString(),
            SentAt = now,
        };

        switch (sandbox.TryAccept(email))
        {
            case PostmarkFaultKind.ServerError:
                return Error(500, 500, "Internal server error (sandbox fault injection).");
            case PostmarkFaultKind.RateLimited:
                return Error(429, 429, "Rate limit exceeded (sandbox fault injection).");
            case PostmarkFaultKind.InvalidAddress:
                return Error(422, 300, $"Error parsing 'To': Illegal email address '{email.To}' (sandbox fault injection).");
            case PostmarkFaultKind.InactiveRecipient:
                return Error(422, 406, "You tried to send to a recipient that has been marked as inactive (sandbox fault injection).");
        }

        await sandbox.WhenDurableAsync().ConfigureAwait(false);

        return Results.Json(new Dictionary<string, object>
        {
            ["To"] = email.To,
            ["SubmittedAt"] = now.ToString("o", CultureInfo.InvariantCulture),
            ["MessageID"] = email.MessageId,
            ["ErrorCode"] = 0,
            ["Message"] = "OK",
        });
    }

    /// <summary>
    /// Postmark's outbound message search: <c>count</c> (1 to 500) and <c>offset</c> are required, and
    /// <c>count + offset</c> may not exceed 10 000; <c>recipient</c>, <c>tag</c>, <c>subject</c> and
    /// <c>metadata_{key}</c> filter; the newest message comes first.
    /// </summary>
    private static IResult SearchOutbound(HttpContext ctx, PostmarkSandbox sandbox, IOptions<SandboxOptions> options)
    {
        var expected = options.Value.PostmarkServerToken;
        var token = ctx.Request.Headers["X-Postmark-Server-Token"].ToString();
        if (!(expected.Length == 0 ? token.Length > 0 : string.Equals(token, expected, StringComparison.Ordinal)))
        {
            return Error(401, 10, "Request does not contain a valid Server token.");
        }
        var query = ctx.Request.Query;
        if (!int.TryParse(query["count"], NumberStyles.None, CultureInfo.InvariantCulture, out var count)
            || !int.TryParse(query["offset"], NumberStyles.None, CultureInfo.InvariantCulture, out var offset))
        {
            return Error(422, 1, "The 'count' and 'offset' parameters are required.");
        }
        if (count is < 1 or > 500 || count + offset > 10_000)
        {
            return Error(422, 1, "Count must be between 1 and 500, and count + offset may not exceed 10,000.");
        }
        IEnumerable<SandboxEmail> found = sandbox.Outbox.Reverse();
        foreach (var (name, values) in query)
        {
            var value = values.ToString();
            found = name switch
            {
                "recipient" => found.Where(m => string.Equals(m.To, value, StringComparison.OrdinalIgnoreCase)),
                "tag" => found.Where(m => string.Equals(m.Tag, value, StringComparison.Ordinal)),
                "subject" => found.Where(m => string.Equals(m.Subject, value, StringComparison.Ordinal)),
                _ when name.StartsWith("metadata_", StringComparison.Ordinal)
                    => found.Where(m => m.Metadata.TryGetValue(name["metadata_".Length..], out var v) && v == value),
                _ => found,
            };
        }
        var matches = found.ToList();
        return Results.Json(new Dictionary<string, object>
        {
            ["TotalCount"] = matches.Count,
            ["Messages"] = matches.Skip(offset).Take(count).Select(m => new Dictionary<string, object?>
            {
                ["MessageID"] = m.MessageId,
                ["To"] = new[] { new Dictionary<string, string> { ["Email"] = m.To } },
                ["Subject"] = m.Subject,
                ["Tag"] = m.Tag,
                ["Metadata"] = m.Metadata,
                ["MessageStream"] = m.MessageStream,
                ["ReceivedAt"] = m.SentAt.ToString("o", CultureInfo.InvariantCulture),
                ["Status"] = "Sent",
            }).ToList(),
        });
    }

    private static IResult Error(int status, int errorCode, string message) =>
        Results.Json(new Dictionary<string, object> { ["ErrorCode"] = errorCode, ["Message"] = message },
            statusCode: status);

    private sealed class PostmarkEmailRequest
    {
        public string? From { get; set; }
        public string? To { get; set; }
        public string? Cc { get; set; }
        public string? Bcc { get; set; }
        public string? Subject { get; set; }
        public string? Tag { get; set; }
        public string? HtmlBody { get; set; }
        public string? TextBody { get; set; }
        public string? ReplyTo { get; set; }
        public List<PostmarkHeader>? Headers { get; set; }
        public string? MessageStream { get; set; }
        public Dictionary<string, string>? Metadata { get; set; }
    }

    private sealed class PostmarkHeader
    {
        public string? Name { get; set; }
        public string? Value { get; set; }
    }

    private sealed class FaultRequest
    {
        public string? Kind { get; set; }
        public int? Times { get; set; }
    }
}
