namespace Escrow.Benchmarks;

public sealed partial class BenchmarkRun
{
    public readonly record struct Lateness(int Count, int Fired, double P50, double P99, double Max, double RefundedP99);

    /// <summary>
    /// How late each refund fired: the escrow's first refund_pending (or refunded) history entry minus its
    /// replyDeadline (deadline + grace), from escrow_ledger and escrow_projection.
    /// </summary>
    private static async Task<Lateness> LatenessAsync(string connectionString, Guid[] ids)
    {
        var rows = await Sql.RowsAsync(connectionString, """
            SELECT extract(epoch FROM min(l.at) FILTER (WHERE l.status IN ('refund_pending', 'refunded')) - p.reply_deadline)::float8,
                   extract(epoch FROM min(l.at) FILTER (WHERE l.status = 'refunded') - p.reply_deadline)::float8
            FROM escrow_projection p JOIN escrow_ledger l ON l.escrow_id = p.escrow_id
            WHERE p.escrow_id = ANY(@ids)
            GROUP BY p.escrow_id, p.reply_deadline
            """, r => (Fired: r.IsDBNull(0) ? (double?)null : r.GetDouble(0), Refunded: r.IsDBNull(1) ? (double?)null : r.GetDouble(1)), ("ids", ids));
        var fired = rows.Where(r => r.Fired is not null).Select(r => r.Fired!.Value).ToList();
        var refunded = rows.Where(r => r.Refunded is not null).Select(r => r.Refunded!.Value).ToList();
        return new Lateness(ids.Length, fired.Count, Percentiles.Of(fired, 50), Percentiles.Of(fired, 99), fired.Count > 0 ? fired.Max() : double.NaN, Percentiles.Of(refunded, 99));
    }

    public readonly record struct OpenFigures(int Open, double CreatePerSecond, double PostP99, double RssMiBBefore, double RssMiBAfter, double BytesPerEscrow,
        double IdleSeconds, double IdleCpuPercent, double IdlePgPercent, Lateness Late, CpuSample RefundCpu,
        long? IdleActivations, double SettledCpuPercent, long? SettledActivations, double BaselineCpuPercent)
    {
        public double LateP99 => Late.P99;

        /// <summary>The API's idle CPU just after creation over its own with no escrows.</summary>
        public double JustCreatedCostPercent => IdleCpuPercent - BaselineCpuPercent;

        /// <summary>The same once idle activations were collected; NaN when not measured.</summary>
        public double SettledCostPercent => SettledCpuPercent - BaselineCpuPercent;

        /// <summary>
        /// What the open escrows cost while idle: the worse of the two moments measured (just after creation, and
        /// settled when measured). NaN when no idle interval was measured.
        /// </summary>
        public double IdleCostPercent => Math.Max(JustCreatedCostPercent, double.IsNaN(SettledCostPercent) ? double.NegativeInfinity : SettledCostPercent);
    }

    private async Task<OpenFigures?> RunOpenScenarioAsync(string repo, string escrowConnection, string serviceConnection, BenchPostgres pg, HttpClient http, string work, double lifecycleRate)
    {
        // Windows: the first 50 % reminder email must come after creation and the idle interval, so the idle
        // CPU is measured while nothing is due; deadlines are spread over several windows.
        // A full run also measures the settled idle state: after the last creation, the escrows' activations are
        // collected once idle for Silo:EscrowCollectionAge (set by ApiProcess to the service's default), so the first
        // reminders must come after that plus the second idle interval (a faster service, with a shorter creation
        // estimate, once measured "settled" with 43 000 activations still in memory).
        var createRate = Math.Max(20, lifecycleRate * 1.2);
        var createEstimate = o.Open / createRate + 10;
        var settling = o.Quick ? 0 : ApiProcess.EscrowCollectionAgeSeconds + 15 + o.IdleSeconds;
        var wMin = (int)Math.Ceiling(2 * (createEstimate + o.IdleSeconds + 10 + settling));
        const int K = 5;
        var windows = Enumerable.Range(0, K).Select(j => wMin + j * o.SpreadSeconds / (K - 1)).Distinct().ToArray();
        Say();
        Say($"== Open escrows: {o.Open} held at once; windows {string.Join(", ", windows.Select(ApiProcess.IsoSeconds))} + grace PT5S (estimated creation {createEstimate:F0} s)");
        await using var api = await ApiProcess.StartAsync(repo, serviceConnection, windows, Path.Combine(work, "api-open.log"), http);
        var client = new EscrowClient(http, api.BaseUrl);
        Say($"   Escrow.Api pid {api.Pid} at {api.BaseUrl} (log {api.LogPath})");
        // Many recipients: each create reserves on its recipient's grain, which serialises a recipient's creates.
        var recipients = await SetupRecipientsAsync(client, "ro" + RunId, o.Open * 5, payouts: false);
        await Task.Delay(15_000); // start-up work (tiered JIT, first timers) settles before the baseline
        // The baseline is as long as each idle interval: what the escrows cost is the difference of the two, and a
        // short baseline moved by a few percent of a core from run to run.
        var baseline = new CpuMeter(api.Pid, pg.PostmasterPid).Start();
        await Task.Delay(TimeSpan.FromSeconds(o.IdleSeconds));
        var baselineCpu = baseline.Stop();
        Say($"   idle, no escrows      {baselineCpu} ({o.IdleSeconds} s)");
        var rssBefore = ProcStat.RssBytes(api.Pid);
        var first = DateTime.UtcNow;
        var watch = Stopwatch.StartNew();
        var lastShown = 0L;
        var created = await CreateManyAsync(client, recipients, o.Open, o.Concurrency, "open", i => ApiProcess.IsoSeconds(windows[i % windows.Length]), d =>
        {
            var s = (long)watch.Elapsed.TotalSeconds;
            if (s >= lastShown + 15 && Interlocked.Exchange(ref lastShown, s) != s)
            {
                Console.WriteLine($"   ... {d} created in {s} s");
            }
        });
        watch.Stop();
        var createSeconds = watch.Elapsed.TotalSeconds;
        await Task.Delay(10_000);
        var rssAfter = ProcStat.RssBytes(api.Pid);
        var bytesPer = (rssAfter - rssBefore) / (double)Math.Max(1, created.Count);
        Say($"   created               {created.Count} in {createSeconds:F1} s = {created.Count / createSeconds:F1} creates/s; POST p50 {Percentiles.Of([.. created.Select(c => c.Milliseconds)], 50):F1} ms, p99 {Percentiles.Of([.. created.Select(c => c.Milliseconds)], 99):F1} ms");
        Say($"   API RSS               {rssBefore / 1048576.0:F0} MiB → {rssAfter / 1048576.0:F0} MiB = {bytesPer / 1024:F1} KiB per open escrow");

        // Idle: nothing due until the first 50 % reminder. Measured twice when there is time: right after creation
        // (every escrow still activated) and just before the first reminders, once idle activations have been
        // collected (Silo:EscrowCollectionAge): the state an open escrow spends most of its life in.
        var quietUntil = first.AddSeconds(wMin / 2.0 - 2);
        var idleSeconds = Math.Min(o.IdleSeconds, (quietUntil - DateTime.UtcNow).TotalSeconds);
        double idleCpu = double.NaN, idlePg = double.NaN, settledCpu = double.NaN;
        long? idleActivations = null, settledActivations = null;
        if (idleSeconds >= 5)
        {
            (var idle, idleActivations) = await MeasureIdleAsync("idle, just created", idleSeconds);
            idleCpu = idle.ApiPercent;
            idlePg = idle.PostgresPercent;
            Say($"   idle cost of the open escrows: {idle.ApiPercent - baselineCpu.ApiPercent:F2} % of a core over the no-escrow baseline");
            var settleStart = quietUntil.AddSeconds(-o.IdleSeconds);
            if (settleStart > DateTime.UtcNow.AddSeconds(30))
            {
                await Task.Delay(settleStart - DateTime.UtcNow);
                (var settled, settledActivations) = await MeasureIdleAsync("idle, settled", o.IdleSeconds);
                settledCpu = settled.ApiPercent;
                Say($"   idle cost of the open escrows, settled: {settled.ApiPercent - baselineCpu.ApiPercent:F2} % of a core over the no-escrow baseline");
            }
        }
        else
        {
            Say($"   idle                  no quiet interval left before the first reminders (creation took longer than estimated)");
        }

        async Task<(CpuSample Cpu, long? Activations)> MeasureIdleAsync(string label, double seconds)
        {
            var before = await EscrowActivationsAsync(http, api.BaseUrl);
            var meter = new CpuMeter(api.Pid, pg.PostmasterPid).Start();
            await Task.Delay(TimeSpan.FromSeconds(seconds));
            var cpu = meter.Stop();
            var after = await EscrowActivationsAsync(http, api.BaseUrl);
            Say($"   {label}: {created.Count} open {cpu}");
            Say($"   escrow activations in memory (dashboard counters): {ShowCount(before)} at the start, {ShowCount(after)} at the end (an idle one is collected after Silo:EscrowCollectionAge)");
            return (cpu, after);
        }

        // Refunds: wait until every deadline + grace has passed and every escrow is refunded.
        var lastDeadline = first.AddSeconds(windows.Max() + createSeconds + 5);
        var storm = new CpuMeter(api.Pid, pg.PostmasterPid).Start();
        var ids = created.Select(c => c.Id).ToArray();
        var timeout = lastDeadline.AddMinutes(5);
        int refunded;
        do
        {
            await Task.Delay(2000);
            refunded = await CountRefundedAsync(escrowConnection, ids);
            if (DateTime.UtcNow > first.AddSeconds(wMin))
            {
                Console.WriteLine($"   ... {refunded}/{ids.Length} refunded");
            }
        }
        while (refunded < ids.Length && DateTime.UtcNow < timeout);
        var stormCpu = storm.Stop();
        var late = await LatenessAsync(escrowConnection, ids);
        Say($"   refunds               {refunded}/{ids.Length} refunded; CPU from the idle interval's end to the last refund: {stormCpu}");
        Say($"   refund after deadline+grace: p50 {late.P50:F2} s, p99 {late.P99:F2} s, max {late.Max:F2} s (first refund_pending entry − replyDeadline); refunded p99 {late.RefundedP99:F2} s");
        Figure("f_open", $"{created.Count}");
        Figure("g_late", $"{late.P50:F1}/{late.P99:F1}/{late.Max:F1} s");
        Figure("h_idle_cpu", double.IsNaN(idleCpu) ? "n/a" : $"{idleCpu:F2} %" + (double.IsNaN(settledCpu) ? "" : $", settled {settledCpu:F2} %"));
        Figure("i_mem", $"{bytesPer / 1024:F1} KiB");
        return new OpenFigures(created.Count, created.Count / createSeconds, Percentiles.Of([.. created.Select(c => c.Milliseconds)], 99),
            rssBefore / 1048576.0, rssAfter / 1048576.0, bytesPer, idleSeconds, idleCpu, idlePg, late, stormCpu,
            idleActivations, settledCpu, settledActivations, baselineCpu.ApiPercent);
    }

    /// <summary>Sum of orleans_grain_state.version per grain type: every WriteStateAsync adds one.</summary>
    private static async Task<Dictionary<string, long>> GrainWritesAsync(string connectionString) =>
        (await Sql.RowsAsync(connectionString, "SELECT grain_type, sum(version)::bigint FROM orleans_grain_state GROUP BY grain_type ORDER BY 1",
            r => (Type: r.GetString(0), Writes: r.GetInt64(1)))).ToDictionary(r => r.Type, r => r.Writes, StringComparer.Ordinal);

    private static string ShowCount(long? n) => n?.ToString(CultureInfo.InvariantCulture) ?? "n/a";

    /// <summary>Escrow grain activations in the silo, from the dashboard's counters; null when they cannot be read.</summary>
    private static async Task<long?> EscrowActivationsAsync(HttpClient http, string baseUrl)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"{baseUrl}/dashboard/DashboardCounters");
            request.Headers.Authorization = new("Basic", Convert.ToBase64String(Encoding.ASCII.GetBytes("bench:" + ApiProcess.AdminKey)));
            using var response = await http.SendAsync(request);
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }
            using var counters = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync());
            return counters.RootElement.GetProperty("simpleGrainStats").EnumerateArray()
                .Where(g => g.GetProperty("grainType").GetString()?.EndsWith(".EscrowGrain", StringComparison.Ordinal) == true)
                .Sum(g => g.GetProperty("activationCount").GetInt64());
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return null;
        }
    }

    private static async Task<int> CountRefundedAsync(string connectionString, Guid[] ids) => (int)await Sql.NumberAsync(connectionString,
        "SELECT count(*) FROM escrow_projection WHERE escrow_id = ANY(@ids) AND status = 'refunded'", ("ids", ids));
}
