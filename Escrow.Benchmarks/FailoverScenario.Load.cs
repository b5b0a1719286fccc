namespace Escrow.Benchmarks;

/// <summary>The load: each escrow's lifecycle as a careful client drives it, retrying what failed.</summary>
public sealed partial class FailoverScenario
{
    private DateTime Due(Track t) => t.ReplyAccepted is not null || t.ReplyAmbiguous
        ? t.ReplyFirstAttempt!.Value
        : t.ReplyDeadline!.Value;

    private readonly ConcurrentBag<(DateTime Start, double Ms)> _calls = [];

    private void Call(DateTime start) => _calls.Add((start, (DateTime.UtcNow - start).TotalMilliseconds));

    private void Error(string what)
    {
        _errors.AddOrUpdate(what, 1, (_, n) => n + 1);
        _errorTimes.Add((DateTime.UtcNow, what));
    }

    private static string Shorten(string body) => body.Length <= 300 ? body : body[..300] + "…";

    private static bool Retryable(HttpStatusCode code) => (int)code >= 500 || code == HttpStatusCode.RequestTimeout;

    private async Task LifecycleAsync(EscrowClient client, Track t)
    {
        var window = ApiProcess.IsoSeconds(o.Window);
        var giveUp = DateTime.UtcNow.AddSeconds(120);
        while (t.Id is null)
        {
            CallResult r;
            var start = DateTime.UtcNow;
            try
            {
                r = await client.CreateAsync(t.Key, t.Recipient, window);
                Call(start);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                Call(start);
                Error("create: " + e.GetType().Name);
                await Task.Delay(1000);
                continue;
            }
            if (r.Code == HttpStatusCode.Created && r.Id is not null)
            {
                t.Id = Guid.Parse(r.Id);
                t.CreatedAt = DateTime.UtcNow;
                break;
            }
            Error($"create: {(int)r.Code}");
            if (!Retryable(r.Code) || DateTime.UtcNow > giveUp)
            {
                Say($"   create {t.Key} gave up: {(int)r.Code} {r.Body}");
                return;
            }
            await Task.Delay(1000);
        }
        // replyDeadline as the service fixed it (expiresAt + grace), not from our clock.
        t.ReplyDeadline = await ReplyDeadlineAsync(client, t.Id.Value) ?? t.CreatedAt!.Value.AddSeconds(o.Window + FailoverOptions.GraceSeconds);
        if (!t.WantsReply)
        {
            return;
        }
        var delay = new Random(t.Index).NextDouble() * 0.7 + 0.1;
        await Task.Delay(TimeSpan.FromSeconds(o.Window * delay));
        t.ReplyFirstAttempt = DateTime.UtcNow;
        while (DateTime.UtcNow < t.ReplyDeadline.Value.AddSeconds(2))
        {
            CallResult r;
            var start = DateTime.UtcNow;
            try
            {
                r = await client.ReplyAsync(t.Id.Value.ToString());
                Call(start);
                t.Attempts.Add($"{start:HH:mm:ss.fff} → {(int)r.Code} {r.Status} in {r.Milliseconds:F0} ms{(r.Body is null ? "" : ": " + Shorten(r.Body))}");
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                Call(start);
                t.Attempts.Add($"{start:HH:mm:ss.fff} → {e.GetType().Name}");
                Error("reply: " + e.GetType().Name);
                t.ReplyAmbiguous = true;
                await Task.Delay(1000);
                continue;
            }
            if (r.Code == HttpStatusCode.OK)
            {
                t.ReplyAccepted = DateTime.UtcNow;
                t.ReplyFinal = r.Status;
                return;
            }
            Error($"reply: {(int)r.Code}");
            if (r.Code == HttpStatusCode.Conflict && t.ReplyAmbiguous && r.Body?.Contains("\"already_replied\"", StringComparison.Ordinal) == true)
            {
                // An earlier attempt failed (5xx) yet the service took the reply: the escrow must be released.
                t.ReplyAccepted = DateTime.UtcNow;
                t.ReplyFinal = "already_replied after a failed attempt";
                return;
            }
            if (!Retryable(r.Code))
            {
                t.ReplyFinal = $"{(int)r.Code}";
                return;
            }
            t.ReplyAmbiguous = true;
            await Task.Delay(1000);
        }
    }

    private static async Task<DateTime?> ReplyDeadlineAsync(EscrowClient client, Guid id)
    {
        for (var attempt = 0; attempt < 30; attempt++)
        {
            try
            {
                using var doc = await GetJsonAsync(client.Http, $"{client.BaseUrl}/v1/escrows/{id}", platform: true);
                return doc.RootElement.GetProperty("replyDeadline").GetDateTimeOffset().UtcDateTime;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or InvalidOperationException)
            {
            }
            await Task.Delay(1000);
        }
        return null;
    }

    // ---- membership and placement ----
}
