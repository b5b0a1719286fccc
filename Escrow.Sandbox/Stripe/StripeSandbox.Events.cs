namespace Escrow.Sandbox;

// Events: what happened, listed and delivered as Stripe does.
public sealed partial class StripeSandbox
{
    /// <summary>Queues another delivery of an existing event (even when automatic delivery is off).</summary>
    public bool ResendEvent(string eventId)
    {
        lock (_gate)
        {
            if (!_events.ContainsKey(eventId))
            {
                return false;
            }
        }

        _deliveries.Writer.TryWrite(new WebhookDelivery(eventId, 1));
        return true;
    }

    internal StripeResponse RetrieveEvent(string id) =>
        _events.TryGetValue(id, out var e)
            ? StripeResponse.Ok((JsonObject)JsonNode.Parse(e.Json)!)
            : throw StripeApiException.Missing("event", id, "id");

    internal StripeResponse ListEvents(StripeForm form)
    {
        var limit = form.Limit();
        var type = form.String("type");
        var createdFrom = form.Long("created[gte]");
        var createdTo = form.Long("created[lt]");
        var matching = _events.Values
            .Where(e => type is null || TypeMatches(type, e.Type))
            .Where(e => (createdFrom is null || e.Created >= createdFrom) && (createdTo is null || e.Created < createdTo))
            .Reverse()
            .ToList();
        matching = Page(matching, e => e.Id, form);
        return StripeResponse.Ok(StripeJson.List("/v1/events",
            matching.Take(limit).Select(e => (JsonObject)JsonNode.Parse(e.Json)!), matching.Count > limit));
    }

    /// <summary>Applies <c>starting_after</c> / <c>ending_before</c> to a newest-first list.</summary>
    private static List<T> Page<T>(List<T> newestFirst, Func<T, string> id, StripeForm form)
    {
        if (form.String("starting_after") is { } after)
        {
            var index = newestFirst.FindIndex(item => id(item) == after);
            return index < 0 ? [] : newestFirst.Skip(index + 1).ToList();
        }

        if (form.String("ending_before") is { } before)
        {
            var index = newestFirst.FindIndex(item => id(item) == before);
            return index < 0 ? [] : newestFirst.Take(index).ToList();
        }

        return newestFirst;
    }

    private static bool TypeMatches(string pattern, string type) =>
        pattern.EndsWith(".*", StringComparison.Ordinal)
            ? type.StartsWith(pattern[..^1], StringComparison.Ordinal)
            : pattern == type;

    private void AddEvent(string type, string objectId, JsonObject dataObject, string? idempotencyKey, string? account = null)
    {
        var id = NewId("evt");
        var created = Now();
        var json = new JsonObject
        {
            ["id"] = id,
            ["object"] = "event",
            ["api_version"] = _options.ApiVersion,
            ["created"] = created,
            ["livemode"] = false,
            ["pending_webhooks"] = 1,
            ["type"] = type,
            ["data"] = new JsonObject { ["object"] = dataObject },
            ["request"] = new JsonObject { ["id"] = null, ["idempotency_key"] = idempotencyKey },
        };
        if (account is not null)
        {
            // An event of a connected account names it at the top level (Connect webhooks).
            json["account"] = account;
        }

        _events[id] = new SandboxEvent
        {
            Id = id,
            Type = type,
            ObjectId = objectId,
            Account = account,
            IdempotencyKey = idempotencyKey,
            Created = created,
            Json = json.ToJsonString(),
        };
        if (_options.DeliverWebhooks)
        {
            _undelivered[id] = id;
            _deliveries.Writer.TryWrite(new WebhookDelivery(id, 1));
        }
    }
}
