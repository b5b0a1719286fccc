using System.Net.Http.Headers;

namespace Escrow.Benchmarks;

/// <summary>After the run: every escrow checked through the API, the sandbox and the ledger.</summary>
public sealed partial class FailoverScenario
{
    private static async Task<int> NonTerminalAsync(string connection, Guid[] ids) => (int)await Sql.NumberAsync(connection, """
        SELECT count(*) FROM unnest(@ids) AS i(id)
        LEFT JOIN escrow_projection p ON p.escrow_id = i.id
        WHERE p.status IS NULL OR p.status NOT IN ('released', 'refunded', 'payment_failed', 'cancelled')
        """, ("ids", ids));

    private static async Task<Dictionary<Guid, DateTime>> FirstTerminalAtAsync(string connection, Guid[] ids) =>
        (await Sql.RowsAsync(connection, """
            SELECT escrow_id, min(at) FROM escrow_ledger
            WHERE escrow_id = ANY(@ids) AND status IN ('released', 'refunded', 'payment_failed', 'cancelled')
            GROUP BY escrow_id
            """, r => (Id: r.GetGuid(0), At: r.GetDateTime(1).ToUniversalTime()), ("ids", ids))).ToDictionary(r => r.Id, r => r.At);

    /// <summary>Seconds from replyDeadline to the first refund_pending/refunded entry (the deadline reminder acting).</summary>
    private static async Task<Dictionary<Guid, double>> RefundFiredAsync(string connection, Guid[] ids) =>
        (await Sql.RowsAsync(connection, """
            SELECT p.escrow_id, extract(epoch FROM min(l.at) - p.reply_deadline)::float8
            FROM escrow_projection p JOIN escrow_ledger l ON l.escrow_id = p.escrow_id
            WHERE p.escrow_id = ANY(@ids) AND l.status IN ('refund_pending', 'refunded')
            GROUP BY p.escrow_id, p.reply_deadline
            """, r => (Id: r.GetGuid(0), Seconds: r.GetDouble(1)), ("ids", ids))).ToDictionary(r => r.Id, r => r.Seconds);

    private static async Task<Dictionary<Guid, string>> StatusesAsync(string connection, string sql) =>
        (await Sql.RowsAsync(connection, sql, r => (Id: r.GetGuid(0), Status: r.GetString(1)))).ToDictionary(r => r.Id, r => r.Status);

    // ---- invariants ----

    private void Violation(string text)
    {
        lock (_violations)
        {
            _violations.Add(text);
        }
    }

    private async Task CheckInvariantsAsync(string connection, HttpClient http, string baseUrl, Track[] tracks)
    {
        // Every escrow the service knows, not only those the load generator saw created.
        var ledgerLast = await StatusesAsync(connection, "SELECT DISTINCT ON (escrow_id) escrow_id, status FROM escrow_ledger ORDER BY escrow_id, seq DESC");
        var projection = await StatusesAsync(connection, "SELECT escrow_id, status FROM escrow_projection");
        var byId = tracks.Where(t => t.Id is not null).ToDictionary(t => t.Id!.Value);
        var ids = byId.Keys.Union(projection.Keys).Union(ledgerLast.Keys).ToArray();
        foreach (var unknown in ids.Where(id => !byId.ContainsKey(id)))
        {
            Violation($"{unknown}: exists in the service but the load generator never got it created (a create that failed yet left an escrow)");
        }

        // Stripe events: how often each PaymentIntent was captured and cancelled.
        var succeeded = await EventCountsAsync(http, baseUrl, "payment_intent.succeeded");
        var canceled = await EventCountsAsync(http, baseUrl, "payment_intent.canceled");
        var accounts = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var r in tracks.Select(t => t.Recipient).Distinct())
        {
            accounts[r] = await AccountOf(http, baseUrl, r);
        }
        var statuses = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        var client = new EscrowClient(http, baseUrl);
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (id, _) =>
        {
            var get = await client.GetAsync(id.ToString());
            if (get.Code != HttpStatusCode.OK || get.Status is null)
            {
                Violation($"{id}: GET /v1/escrows → {(int)get.Code}");
                return;
            }
            statuses.AddOrUpdate(get.Status, 1, (_, n) => n + 1);
            using var escrow = await GetJsonAsync(http, $"{baseUrl}/v1/escrows/{id}", platform: true);
            var e = escrow.RootElement;
            var status = get.Status;
            var pi = e.GetProperty("paymentIntentId").GetString();
            var transferId = e.TryGetProperty("transferId", out var tr) ? tr.GetString() : null;
            var share = e.GetProperty("recipientShareMinor").GetInt64();
            var amount = e.GetProperty("amountMinor").GetInt64();
            var recipient = e.GetProperty("recipientId").GetString()!;
            if (!Terminal.Contains(status))
            {
                Violation($"{id}: not terminal ({status})");
            }
            if (!ledgerLast.TryGetValue(id, out var last) || last != status)
            {
                Violation($"{id}: ledger's last status {last ?? "none"} ≠ API status {status}");
            }
            if (!projection.TryGetValue(id, out var proj) || proj != status)
            {
                Violation($"{id}: projection status {proj ?? "none"} ≠ API status {status}");
            }
            if (byId.TryGetValue(id, out var t))
            {
                if (t.ReplyAccepted is not null && status != "released")
                {
                    Violation($"{id}: reply accepted (200 {t.ReplyFinal}) at {t.ReplyAccepted:O} but status {status}");
                }
                if (!t.WantsReply && status != "refunded")
                {
                    Violation($"{id}: never replied to but status {status}");
                }
                if (t.WantsReply && t.ReplyAccepted is null && !t.ReplyAmbiguous && status != "refunded")
                {
                    Violation($"{id}: reply refused ({t.ReplyFinal}) but status {status}");
                }
            }
            if (pi is null)
            {
                Violation($"{id}: {status} without a PaymentIntent");
                return;
            }
            using var intent = await GetJsonAsync(http, $"{baseUrl}/_sandbox/stripe/v1/payment_intents/{pi}", platform: false);
            var piStatus = intent.RootElement.GetProperty("status").GetString();
            var received = intent.RootElement.GetProperty("amount_received").GetInt64();
            using var transfers = await GetJsonAsync(http, $"{baseUrl}/_sandbox/stripe/v1/transfers?transfer_group={id:D}&limit=100", platform: false);
            var list = transfers.RootElement.GetProperty("data").EnumerateArray().ToList();
            var captures = succeeded.GetValueOrDefault(pi);
            var cancels = canceled.GetValueOrDefault(pi);
            if (captures > 1)
            {
                Violation($"{id}: PaymentIntent {pi} captured {captures} times");
            }
            if (captures > 0 && cancels > 0)
            {
                Violation($"{id}: PaymentIntent {pi} both captured and cancelled");
            }
            if (list.Count > 1)
            {
                Violation($"{id}: {list.Count} transfers in its transfer_group (double payment)");
            }
            switch (status)
            {
                case "released":
                    if (piStatus != "succeeded" || received != amount || captures != 1)
                    {
                        Violation($"{id}: released but PaymentIntent {pi} is {piStatus}, amount_received {received} of {amount}, {captures} capture events");
                    }
                    if (list.Count != 1)
                    {
                        Violation($"{id}: released with {list.Count} transfers");
                        break;
                    }
                    var transfer = list[0];
                    var account = accounts.GetValueOrDefault(recipient);
                    if (transfer.GetProperty("amount").GetInt64() != share || transfer.GetProperty("id").GetString() != transferId
                        || transfer.GetProperty("destination").GetString() != account)
                    {
                        Violation($"{id}: transfer {transfer.GetProperty("id").GetString()} of {transfer.GetProperty("amount").GetInt64()} to {transfer.GetProperty("destination").GetString()} ≠ share {share} to {account}, recorded {transferId}");
                    }
                    break;
                case "refunded":
                    var refundedAfterCapture = false;
                    if (piStatus == "succeeded" && intent.RootElement.GetProperty("latest_charge").GetString() is { } charge)
                    {
                        using var ch = await GetJsonAsync(http, $"{baseUrl}/_sandbox/stripe/v1/charges/{charge}", platform: false);
                        refundedAfterCapture = ch.RootElement.GetProperty("amount_refunded").GetInt64() == received;
                    }
                    if (piStatus != "canceled" && !refundedAfterCapture)
                    {
                        Violation($"{id}: refunded but PaymentIntent {pi} is {piStatus} and not refunded");
                    }
                    if (list.Count != 0)
                    {
                        Violation($"{id}: refunded but {list.Count} transfer(s) to the recipient");
                    }
                    break;
                default:
                    if (list.Count != 0 || captures != 0)
                    {
                        Violation($"{id}: {status} with {list.Count} transfers and {captures} captures");
                    }
                    break;
            }
        });
        Say($"   checked {ids.Length} escrows: {string.Join(", ", statuses.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => $"{s.Key} {s.Value}"))}");
        Say($"   Stripe: {succeeded.Values.Sum()} capture events on {succeeded.Count} PaymentIntents, {canceled.Values.Sum()} cancel events on {canceled.Count}");
    }

    private static async Task<string?> AccountOf(HttpClient http, string baseUrl, string recipient)
    {
        using var doc = await GetJsonAsync(http, $"{baseUrl}/v1/recipients/{recipient}", platform: true);
        return doc.RootElement.GetProperty("stripeAccountId").GetString();
    }

    private static async Task<JsonDocument> GetJsonAsync(HttpClient http, string url, bool platform)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (platform)
        {
            request.Headers.Add("X-Api-Key", ApiProcess.PlatformKey);
        }
        else
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "sk_test_sandbox");
        }
        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"GET {url}: {(int)response.StatusCode} {body}");
        }
        return JsonDocument.Parse(body);
    }

    /// <summary>Events of one type in the Stripe sandbox, counted per PaymentIntent (pages of 100, newest first).</summary>
    private static async Task<Dictionary<string, int>> EventCountsAsync(HttpClient http, string baseUrl, string type)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        string? after = null;
        while (true)
        {
            var url = $"{baseUrl}/_sandbox/stripe/v1/events?type={type}&limit=100" + (after is null ? "" : $"&starting_after={after}");
            using var page = await GetJsonAsync(http, url, platform: false);
            var data = page.RootElement.GetProperty("data").EnumerateArray().ToList();
            foreach (var e in data)
            {
                var pi = e.GetProperty("data").GetProperty("object").GetProperty("id").GetString()!;
                counts[pi] = counts.GetValueOrDefault(pi) + 1;
            }
            if (data.Count == 0 || !page.RootElement.GetProperty("has_more").GetBoolean())
            {
                return counts;
            }
            after = data[^1].GetProperty("id").GetString();
        }
    }

    private static string FindRepo() => ChildProcess.RepositoryRoot();
}
