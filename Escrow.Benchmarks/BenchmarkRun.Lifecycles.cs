namespace Escrow.Benchmarks;

public sealed record ReleaseRun(int Count, double Seconds, List<double> CreateMs, List<double> ReplyMs, List<double> ReplyToReleasedMs, int ReleasedByReply, int Errors)
{
    public double PerSecond => Count / Seconds;
}

public sealed partial class BenchmarkRun
{
    /// <summary>The service's database as the lifecycle phases measure it.</summary>
    private sealed record Database(DbStats Stats, string EscrowConnection, bool Statements);

    /// <summary>What one kind of lifecycle cost; NaN commits when its phase did not run.</summary>
    private readonly record struct LifecycleCost(ReleaseRun? Run, double Commits, double Writes, CpuSample? Cpu)
    {
        public static LifecycleCost NotRun => new(null, double.NaN, double.NaN, null);
    }

    /// <summary>
    /// Released lifecycles before the measured ones, for at least --warmup-seconds: tiered compilation keeps
    /// recompiling hot code for tens of seconds after start (12 % of the API's CPU 40 s after it), and connection pools
    /// and the grain directory fill. What is measured is the steady state.
    /// </summary>
    private async Task WarmUpAsync(EscrowClient client, string[] recipients)
    {
        var warmed = 0;
        var warmWatch = Stopwatch.StartNew();
        do
        {
            warmed += (await RunReleasesAsync(client, recipients, Math.Min(200, Math.Max(20, o.Lifecycles / 10)), o.Concurrency, "warm" + warmed)).Count;
        }
        while (warmWatch.Elapsed.TotalSeconds < o.WarmupSeconds);
        Say($"Warm-up: {warmed} released lifecycles in {warmWatch.Elapsed.TotalSeconds:F1} s");
    }

    /// <summary>Released lifecycles at full speed (closed loop, --concurrency clients): throughput, commits, CPU.</summary>
    private async Task<LifecycleCost> MeasureReleasedAsync(EscrowClient client, string[] recipients, Database db, Func<CpuMeter> meter)
    {
        var before = await Counters.BeforeAsync(db);
        var cpuMeter = meter();
        var release = await RunReleasesAsync(client, recipients, o.Lifecycles, o.Concurrency, "rel");
        var releaseCpu = cpuMeter.Stop();
        var cost = new PhaseCost(before, await Counters.AfterAsync(db), release.Count);
        var (walBefore, walAfter) = (cost.Before.Wal, cost.After.Wal);
        Say();
        Say($"== Released lifecycles: create (pm_card_visa → held) → POST /response → released; {release.Count} lifecycles, {o.Concurrency} clients");
        Say($"   throughput            {release.PerSecond:F1} lifecycles/s ({release.Seconds:F1} s), errors {release.Errors}");
        Say($"   durable commits       {cost.CommitsPer:F2} per lifecycle (xact_commit delta {cost.Commits}, settled)");
        Say($"   of which writing      {cost.WritesPer:F2} per lifecycle (transaction ids assigned: commits that wait for a WAL flush; the rest are read-only or utility statements)");
        Say($"   WAL                   {(walAfter.Bytes - walBefore.Bytes) / (double)release.Count / 1024:F1} KiB per lifecycle, {cost.Commits / (double)Math.Max(1, walAfter.Syncs - walBefore.Syncs):F1} commits per WAL flush");
        Say($"   POST /v1/escrows      p50 {Percentiles.Of(release.CreateMs, 50):F1} ms, p99 {Percentiles.Of(release.CreateMs, 99):F1} ms (at max throughput)");
        Say($"   POST /response        p50 {Percentiles.Of(release.ReplyMs, 50):F1} ms, p99 {Percentiles.Of(release.ReplyMs, 99):F1} ms; {release.ReleasedByReply} of {release.Count} replies returned status released (synchronous release)");
        Say($"   reply → released      p50 {Percentiles.Of(release.ReplyToReleasedMs, 50):F1} ms, p99 {Percentiles.Of(release.ReplyToReleasedMs, 99):F1} ms");
        Say($"   CPU                   {releaseCpu}");
        Say($"   CPU per lifecycle     API {1000 * releaseCpu.ApiSeconds / release.Count:F2} ms, PostgreSQL {1000 * releaseCpu.PostgresSeconds / release.Count:F2} ms");
        await ReportWritesAndStatementsAsync(db, cost, "released lifecycle");
        return new LifecycleCost(release, cost.CommitsPer, cost.WritesPer, releaseCpu);
    }

    /// <summary>Paced at half the measured throughput, open loop: the latency of POST /v1/escrows without saturation.</summary>
    private async Task MeasurePacedAsync(EscrowClient client, string[] recipients, double maxRate)
    {
        Say();
        if (o.PacedSeconds > 0)
        {
            var paced = await RunPacedAsync(client, recipients, maxRate / 2, o.PacedSeconds);
            Say($"== Paced at half the max throughput ({maxRate / 2:F1} lifecycles/s offered, open loop, {o.PacedSeconds} s): {paced.Count} lifecycles, errors {paced.Errors}");
            Say($"   POST /v1/escrows      p50 {Percentiles.Of(paced.CreateMs, 50):F1} ms, p99 {Percentiles.Of(paced.CreateMs, 99):F1} ms");
            Say($"   reply → released      p50 {Percentiles.Of(paced.ReplyToReleasedMs, 50):F1} ms, p99 {Percentiles.Of(paced.ReplyToReleasedMs, 99):F1} ms");
            Say(_pacedSlowest);
        }
        else
        {
            Say("== Paced at half the max throughput: not run (--paced-seconds 0)");
        }
    }

    /// <summary>
    /// One client: what a create takes with no other client's work queued beside it (the floor under the paced run's
    /// percentiles), and what a lifecycle costs in CPU at that light load.
    /// </summary>
    private async Task MeasureOneClientAsync(EscrowClient client, string[] recipients, Func<CpuMeter> meter)
    {
        Say();
        if (o.OneClientSeconds > 0)
        {
            var oneMeter = meter();
            var one = await RunOneClientAsync(client, recipients, o.OneClientSeconds);
            var oneCpu = oneMeter.Stop();
            _oneClientP99 = Percentiles.Of(one.CreateMs, 99);
            Say($"== One client (closed loop, {one.Seconds:F0} s): {one.Count} lifecycles, {one.PerSecond:F1}/s, errors {one.Errors}");
            Say($"   POST /v1/escrows      p50 {Percentiles.Of(one.CreateMs, 50):F1} ms, p99 {_oneClientP99:F1} ms");
            Say($"   reply → released      p50 {Percentiles.Of(one.ReplyToReleasedMs, 50):F1} ms, p99 {Percentiles.Of(one.ReplyToReleasedMs, 99):F1} ms");
            Say($"   CPU                   {oneCpu}");
            Say($"   CPU per lifecycle     API {1000 * oneCpu.ApiSeconds / Math.Max(1, one.Count):F2} ms, PostgreSQL {1000 * oneCpu.PostgresSeconds / Math.Max(1, one.Count):F2} ms");
        }
        else
        {
            Say("== One client: not run (--one-client-seconds 0)");
        }
    }

    /// <summary>Refunded lifecycles: create, deadline (PT30S) + grace (PT5S), refunded.</summary>
    private async Task<LifecycleCost> MeasureRefundedAsync(EscrowClient client, string[] recipients, Database db)
    {
        var before = await Counters.BeforeAsync(db);
        var refundIds = await CreateManyAsync(client, recipients, o.RefundLifecycles, o.Concurrency, "ref", _ => WindowA, null);
        await WaitRefundedByHttpAsync(client, refundIds.Select(r => r.Id).ToList(), TimeSpan.FromSeconds(35));
        var cost = new PhaseCost(before, await Counters.AfterAsync(db), refundIds.Count);
        var refundLate = await LatenessAsync(db.EscrowConnection, refundIds.Select(r => r.Id).ToArray());
        Say();
        Say($"== Refunded lifecycles: create → deadline PT30S + grace PT5S → refunded; {refundIds.Count} escrows");
        Say($"   durable commits       {cost.CommitsPer:F2} per lifecycle (xact_commit delta {cost.Commits}, settled)");
        Say($"   of which writing      {cost.WritesPer:F2} per lifecycle (transaction ids assigned)");
        Say($"   refund after deadline+grace: p50 {refundLate.P50:F2} s, p99 {refundLate.P99:F2} s, max {refundLate.Max:F2} s (refund_pending entry); refunded p99 {refundLate.RefundedP99:F2} s");
        await ReportWritesAndStatementsAsync(db, cost, "refunded lifecycle");
        Figure("b_refund_commits", $"{cost.CommitsPer:F1}");
        return new LifecycleCost(null, cost.CommitsPer, cost.WritesPer, null);
    }

    /// <summary>Recipients with the maximum daily limit (1 000), enough of them for <paramref name="escrows"/> escrows today.</summary>
    private async Task<string[]> SetupRecipientsAsync(EscrowClient client, string prefix, int escrows, bool payouts)
    {
        var count = Math.Max(1, (escrows + 499) / 500);
        var ids = Enumerable.Range(0, count).Select(i => $"{prefix}-{i}").ToArray();
        var watch = Stopwatch.StartNew();
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (id, _) =>
        {
            await client.PutRecipientAsync(id, 1000);
            if (payouts)
            {
                await client.EnablePayoutsAsync(id);
            }
        });
        Say($"Recipients: {count} (daily limit 1 000 each{(payouts ? ", payouts enabled through the sandbox" : "")}) in {watch.Elapsed.TotalSeconds:F1} s");
        return ids;
    }

    private readonly record struct Lifecycle(double CreateMs, double ReplyMs, double ReplyToReleasedMs, bool ReleasedByReply);

    private async Task<Lifecycle> ReleaseOneAsync(EscrowClient client, string key, string recipient)
    {
        var created = await client.CreateAsync(key, recipient, WindowA);
        if (created.Code != HttpStatusCode.Created || created.Status != "held" || created.Id is null)
        {
            throw new InvalidOperationException($"POST /v1/escrows: expected 201 held, got {(int)created.Code} {created.Status}: {created.Body}");
        }
        var replyStart = Stopwatch.GetTimestamp();
        var reply = await client.ReplyAsync(created.Id);
        if (reply.Code != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"POST /v1/escrows/{created.Id}/response: {(int)reply.Code}: {reply.Body}");
        }
        if (reply.Status == "released")
        {
            return new Lifecycle(created.Milliseconds, reply.Milliseconds, reply.Milliseconds, true);
        }
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            var get = await client.GetAsync(created.Id);
            if (get.Status == "released")
            {
                return new Lifecycle(created.Milliseconds, reply.Milliseconds, Stopwatch.GetElapsedTime(replyStart).TotalMilliseconds, false);
            }
            await Task.Delay(10);
        }
        throw new InvalidOperationException($"Escrow {created.Id} not released 60 s after the reply (status {reply.Status}).");
    }

    private async Task<ReleaseRun> RunReleasesAsync(EscrowClient client, string[] recipients, int count, int concurrency, string tag)
    {
        var results = new ConcurrentBag<Lifecycle>();
        var errors = 0;
        var next = -1;
        var watch = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                try
                {
                    results.Add(await ReleaseOneAsync(client, $"{RunId}-{tag}-{i}", recipients[Interlocked.Increment(ref _recipientCursor) % recipients.Length]));
                }
                catch (InvalidOperationException e)
                {
                    if (Interlocked.Increment(ref errors) <= 5)
                    {
                        Say($"   error: {e.Message}");
                    }
                }
            }
        }).ToArray();
        await Task.WhenAll(workers);
        watch.Stop();
        var list = results.ToList();
        return new ReleaseRun(list.Count, watch.Elapsed.TotalSeconds, [.. list.Select(l => l.CreateMs)], [.. list.Select(l => l.ReplyMs)],
            [.. list.Select(l => l.ReplyToReleasedMs)], list.Count(l => l.ReleasedByReply), errors);
    }

    private int _recipientCursor;

    /// <summary>Released lifecycles one after the other for at least <paramref name="seconds"/>.</summary>
    private async Task<ReleaseRun> RunOneClientAsync(EscrowClient client, string[] recipients, int seconds)
    {
        var runs = new List<ReleaseRun>();
        var watch = Stopwatch.StartNew();
        do
        {
            runs.Add(await RunReleasesAsync(client, recipients, 25, 1, "one" + runs.Count));
        }
        while (watch.Elapsed.TotalSeconds < seconds);
        return new ReleaseRun(runs.Sum(r => r.Count), watch.Elapsed.TotalSeconds, [.. runs.SelectMany(r => r.CreateMs)], [.. runs.SelectMany(r => r.ReplyMs)],
            [.. runs.SelectMany(r => r.ReplyToReleasedMs)], runs.Sum(r => r.ReleasedByReply), runs.Sum(r => r.Errors));
    }

    /// <summary>Open loop: lifecycles start at a fixed rate whatever the latency, so queueing shows in the percentiles.</summary>
    private async Task<ReleaseRun> RunPacedAsync(EscrowClient client, string[] recipients, double rate, int seconds)
    {
        var results = new ConcurrentBag<(double At, Lifecycle Lifecycle)>();
        var errors = 0;
        var total = (int)(rate * seconds);
        var tasks = new List<Task>(total);
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < total; i++)
        {
            var due = TimeSpan.FromSeconds(i / rate);
            var wait = due - watch.Elapsed;
            if (wait > TimeSpan.FromMilliseconds(1))
            {
                await Task.Delay(wait);
            }
            var key = $"{RunId}-paced-{i}";
            var recipient = recipients[Interlocked.Increment(ref _recipientCursor) % recipients.Length];
            tasks.Add(Task.Run(async () =>
            {
                try
                {
                    results.Add((due.TotalSeconds, await ReleaseOneAsync(client, key, recipient)));
                }
                catch (InvalidOperationException e)
                {
                    if (Interlocked.Increment(ref errors) <= 5)
                    {
                        Say($"   error: {e.Message}");
                    }
                }
            }));
        }
        await Task.WhenAll(tasks);
        var list = results.Select(r => r.Lifecycle).ToList();
        var run = new ReleaseRun(list.Count, watch.Elapsed.TotalSeconds, [.. list.Select(l => l.CreateMs)], [.. list.Select(l => l.ReplyMs)],
            [.. list.Select(l => l.ReplyToReleasedMs)], list.Count(l => l.ReleasedByReply), errors);
        _pacedP99 = Percentiles.Of(run.CreateMs, 99);
        // Whether the slow creates are spread over the run (queueing) or bunched in a few moments (a pause of the
        // API or PostgreSQL): the whole seconds of the run in which the slowest 1 % started.
        var slowest = results.OrderByDescending(r => r.Lifecycle.CreateMs).Take(Math.Max(1, results.Count / 100)).ToList();
        var slowSeconds = slowest.Select(r => (int)r.At).Distinct().Order().ToList();
        _pacedSlowest = $"   slowest 1 % of POSTs  {slowest.Count} (≥ {slowest.LastOrDefault().Lifecycle.CreateMs:F1} ms), started in {slowSeconds.Count} of the run's {seconds} seconds: {string.Join(' ', slowSeconds)}";
        Figure("e_post_p99_half", $"{_pacedP99:F1} ms");
        Figure("e_post_p50_half", $"{Percentiles.Of(run.CreateMs, 50):F1} ms");
        return run;
    }

    private readonly record struct Created(Guid Id, double Milliseconds, DateTime At);

    private async Task<List<Created>> CreateManyAsync(EscrowClient client, string[] recipients, int count, int concurrency, string tag, Func<int, string> window, Action<int>? progress)
    {
        var results = new ConcurrentBag<Created>();
        var next = -1;
        var done = 0;
        var errors = 0;
        var cursor = 0;
        var workers = Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var r = await client.CreateAsync($"{RunId}-{tag}-{i}", recipients[Interlocked.Increment(ref cursor) % recipients.Length], window(i));
                if (r.Code == HttpStatusCode.Created && r.Status == "held" && r.Id is not null)
                {
                    results.Add(new Created(Guid.Parse(r.Id), r.Milliseconds, DateTime.UtcNow));
                }
                else if (Interlocked.Increment(ref errors) <= 5)
                {
                    Say($"   error: POST /v1/escrows {(int)r.Code} {r.Status}: {r.Body}");
                }
                var d = Interlocked.Increment(ref done);
                progress?.Invoke(d);
            }
        }).ToArray();
        await Task.WhenAll(workers);
        return [.. results];
    }

    /// <summary>Waits over HTTP (no database query, so no extra commits) until every escrow is refunded.</summary>
    private static async Task WaitRefundedByHttpAsync(EscrowClient client, List<Guid> ids, TimeSpan first)
    {
        await Task.Delay(first);
        var pending = ids.ToHashSet();
        var deadline = DateTime.UtcNow.AddMinutes(5);
        while (pending.Count > 0 && DateTime.UtcNow < deadline)
        {
            foreach (var id in pending.ToList())
            {
                var r = await client.GetAsync(id.ToString());
                if (r.Status is "refunded")
                {
                    pending.Remove(id);
                }
            }
            if (pending.Count > 0)
            {
                await Task.Delay(1000);
            }
        }
        if (pending.Count > 0)
        {
            throw new InvalidOperationException($"{pending.Count} escrows not refunded 5 minutes after their deadline.");
        }
    }
}
