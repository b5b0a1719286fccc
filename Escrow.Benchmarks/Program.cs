using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Escrow.Benchmarks;
using Npgsql;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
if (args.Length > 0 && args[0] == EmulatorProcess.Command)
{
    return await EmulatorProcess.RunAsync(args[1..]);
}
if (args.Length > 0 && args[0] == "allocations")
{
    return AllocationReport.Run(args[1..]);
}
if (args.Length > 0 && args[0] == "gc")
{
    return GcPauseReport.Run(args[1..]);
}
if (args.Length > 0 && args[0] == "timers")
{
    return await TimerCostReport.RunAsync(args[1..]);
}
if (args.Length > 0 && args[0] == "rate-budget")
{
    return await RateBudgetScenario.RunAsync(args[1..]);
}
if (args.Length > 0 && args[0] == "failover")
{
    FailoverOptions failover;
    try
    {
        failover = FailoverOptions.Parse(args[1..]);
    }
    catch (HelpRequested)
    {
        Console.WriteLine(FailoverOptions.Usage);
        return 0;
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine(e.Message);
        Console.Error.WriteLine(FailoverOptions.Usage);
        return 2;
    }
    try
    {
        return await new FailoverScenario(failover).RunAsync();
    }
    catch (Exception e) when (e is InvalidOperationException or NpgsqlException or HttpRequestException or IOException)
    {
        Console.Error.WriteLine($"Failover scenario failed: {e.Message}");
        Console.Error.WriteLine(e.StackTrace);
        return 1;
    }
}

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (HelpRequested)
{
    Console.WriteLine(BenchOptions.Usage);
    return 0;
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

var runner = new BenchmarkRun(options);
try
{
    await runner.RunAsync();
    return 0;
}
catch (Exception e) when (e is InvalidOperationException or NpgsqlException or HttpRequestException or IOException)
{
    Console.Error.WriteLine($"Benchmark failed: {e.Message}");
    Console.Error.WriteLine(e.StackTrace);
    return 1;
}

namespace Escrow.Benchmarks
{
    public sealed record ReleaseRun(int Count, double Seconds, List<double> CreateMs, List<double> ReplyMs, List<double> ReplyToReleasedMs, int ReleasedByReply, int Errors)
    {
        public double PerSecond => Count / Seconds;
    }

    public sealed partial class BenchmarkRun(BenchOptions o)
    {
        private const string WindowA = "PT30S";
        private readonly string _runId = DateTime.UtcNow.ToString("MMddHHmmss", CultureInfo.InvariantCulture) + Guid.NewGuid().ToString("N")[..4];
        private readonly StringBuilder _transcript = new();
        private readonly SortedDictionary<string, string> _figures = new(StringComparer.Ordinal);
        private readonly List<string> _targets = [];

        private void Say(string line = "")
        {
            Console.WriteLine(line);
            _transcript.AppendLine(line);
        }

        private void Figure(string key, string value) => _figures[key] = value;

        private void Target(string name, bool met, string detail)
        {
            var line = $"{(met ? "MET    " : "MISSED ")} {name}: {detail}";
            _targets.Add(line);
        }

        public async Task RunAsync()
        {
            var repo = FindRepo();
            var work = Path.Combine(Path.GetTempPath(), "escrow-bench-" + _runId);
            Directory.CreateDirectory(work);
            var started = DateTime.UtcNow;
            Say($"Escrow benchmark {_runId}: {o.CommandLine}");
            Say($"Machine: {Environment.ProcessorCount} cores, {ProcStat.MemTotalGiB():F1} GiB, {ProcStat.CpuModel()}; load average {ProcStat.LoadAverage()} at start");
            Say($"Settings: lifecycles {o.Lifecycles}, concurrency {o.Concurrency}, refunds {o.RefundLifecycles}, open {o.Open}; logs in {work}");

            if (!o.SkipBuild)
            {
                await ApiProcess.BuildAsync(repo);
            }

            await using var pg = await PostgresCluster.StartOrUseAsync(o.Connection);
            Say($"PostgreSQL: {pg.Describe}");
            var statements = await pg.TryEnableStatementsAsync();
            Say(statements ? "pg_stat_statements: available (track=top)" : "pg_stat_statements: not available (per-statement counts skipped)");

            var ceiling = await MeasureCeilingAsync(pg, work);

            var dbName = "escrow_bench_" + _runId;
            var escrowConnection = await pg.CreateDatabaseAsync(dbName);
            var serviceConnection = string.IsNullOrWhiteSpace(o.ServiceConnectionOptions) ? escrowConnection : escrowConnection.TrimEnd(';') + ";" + o.ServiceConnectionOptions;
            var dbStats = new DbStats(await pg.StatsConnectionStringAsync(), new NpgsqlConnectionStringBuilder(escrowConnection).Database!);
            using var http = EscrowClient.CreateHttp();

            ReleaseRun release;
            double commitsPerRelease;
            // NaN when the refund phase does not run (--refunds 0).
            var commitsPerRefund = double.NaN;
            double writesPerRelease;
            var writesPerRefund = double.NaN;
            CpuSample releaseCpu;
            var apiPort = PostgresCluster.FreePort();
            await using var emulators = o.SeparateEmulators
                ? await EmulatorProcess.StartAsync($"http://127.0.0.1:{apiPort}/webhooks/stripe", ApiProcess.WebhookSecret, Path.Combine(work, "emulators.log"), http)
                : null;
            await using (var api = await ApiProcess.StartAsync(repo, serviceConnection, [30], Path.Combine(work, "api-lifecycles.log"), http, emulators?.ServiceEnvironment(), apiPort))
            {
                var client = new EscrowClient(http, api.BaseUrl, emulators?.BaseUrl);
                Say($"Escrow.Api pid {api.Pid} at {api.BaseUrl} (log {api.LogPath}); " + (emulators is null ? "Stripe and Postmark emulators inside it" : $"Stripe and Postmark {emulators}"));
                var recipients = await SetupRecipientsAsync(client, "ra" + _runId, o.Lifecycles * 2 + o.RefundLifecycles + 5000 + o.WarmupSeconds * 200 + o.OneClientSeconds * 100, payouts: true);

                // Warm-up: JIT (tiered compilation keeps recompiling hot code for tens of seconds after start: 12 % of the
                // API's CPU was the JIT 40 s after start), connection pools, grain directory. Measured is the steady state.
                var warmed = 0;
                var warmWatch = Stopwatch.StartNew();
                do
                {
                    warmed += (await RunReleasesAsync(client, recipients, Math.Min(200, Math.Max(20, o.Lifecycles / 10)), o.Concurrency, "warm" + warmed)).Count;
                }
                while (warmWatch.Elapsed.TotalSeconds < o.WarmupSeconds);
                Say($"Warm-up: {warmed} released lifecycles in {warmWatch.Elapsed.TotalSeconds:F1} s");

                // 1. Released lifecycles at full speed (closed loop, C clients).
                var grainsBefore = await GrainWritesAsync(escrowConnection);
                var before = await dbStats.SettledCommitsAsync();
                var walBefore = await dbStats.WalAsync();
                var xidBefore = await dbStats.NextXidAsync();
                if (statements)
                {
                    await dbStats.ResetStatementsAsync();
                }
                var meter = new CpuMeter(api.Pid, pg.PostmasterPid, emulators?.Pid).Start();
                release = await RunReleasesAsync(client, recipients, o.Lifecycles, o.Concurrency, "rel");
                releaseCpu = meter.Stop();
                var after = await dbStats.SettledCommitsAsync();
                var walAfter = await dbStats.WalAsync();
                var xidAfter = await dbStats.NextXidAsync();
                commitsPerRelease = (after - before) / (double)release.Count;
                var grainsAfter = await GrainWritesAsync(escrowConnection);
                writesPerRelease = (xidAfter - xidBefore) / (double)release.Count;
                Say();
                Say($"== Released lifecycles: create (pm_card_visa → held) → POST /response → released; {release.Count} lifecycles, {o.Concurrency} clients");
                Say($"   throughput            {release.PerSecond:F1} lifecycles/s ({release.Seconds:F1} s), errors {release.Errors}");
                Say($"   durable commits       {commitsPerRelease:F2} per lifecycle (xact_commit delta {after - before}, settled)");
                Say($"   of which writing      {writesPerRelease:F2} per lifecycle (transaction ids assigned: commits that wait for a WAL flush; the rest are read-only or utility statements)");
                Say($"   WAL                   {(walAfter.Bytes - walBefore.Bytes) / (double)release.Count / 1024:F1} KiB per lifecycle, {(after - before) / (double)Math.Max(1, walAfter.Syncs - walBefore.Syncs):F1} commits per WAL flush");
                Say($"   POST /v1/escrows      p50 {Percentiles.Of(release.CreateMs, 50):F1} ms, p99 {Percentiles.Of(release.CreateMs, 99):F1} ms (at max throughput)");
                Say($"   POST /response        p50 {Percentiles.Of(release.ReplyMs, 50):F1} ms, p99 {Percentiles.Of(release.ReplyMs, 99):F1} ms; {release.ReleasedByReply} of {release.Count} replies returned status released (synchronous release)");
                Say($"   reply → released      p50 {Percentiles.Of(release.ReplyToReleasedMs, 50):F1} ms, p99 {Percentiles.Of(release.ReplyToReleasedMs, 99):F1} ms");
                Say($"   CPU                   {releaseCpu}");
                Say($"   CPU per lifecycle     API {1000 * releaseCpu.ApiSeconds / release.Count:F2} ms, PostgreSQL {1000 * releaseCpu.PostgresSeconds / release.Count:F2} ms");
                Say($"   grain state writes    {string.Join(", ", grainsAfter.Select(g => $"{g.Key} {(g.Value - grainsBefore.GetValueOrDefault(g.Key)) / (double)release.Count:F2}"))} per lifecycle (orleans_grain_state version delta)");
                if (statements)
                {
                    PrintStatements(await dbStats.StatementsAsync(), release.Count, "released lifecycle");
                }

                // 2. Paced at half the measured throughput: latency of POST /v1/escrows without saturation.
                Say();
                if (o.PacedSeconds > 0)
                {
                    var paced = await RunPacedAsync(client, recipients, release.PerSecond / 2, o.PacedSeconds);
                    Say($"== Paced at half the max throughput ({release.PerSecond / 2:F1} lifecycles/s offered, open loop, {o.PacedSeconds} s): {paced.Count} lifecycles, errors {paced.Errors}");
                    Say($"   POST /v1/escrows      p50 {Percentiles.Of(paced.CreateMs, 50):F1} ms, p99 {Percentiles.Of(paced.CreateMs, 99):F1} ms");
                    Say($"   reply → released      p50 {Percentiles.Of(paced.ReplyToReleasedMs, 50):F1} ms, p99 {Percentiles.Of(paced.ReplyToReleasedMs, 99):F1} ms");
                    Say(_pacedSlowest);
                }
                else
                {
                    Say("== Paced at half the max throughput: not run (--paced-seconds 0)");
                }

                // 2b. One client: what a create takes with no other client's work queued beside it (the floor under the
                // paced run's percentiles), and what a lifecycle costs in CPU at that light load.
                Say();
                if (o.OneClientSeconds > 0)
                {
                    var oneMeter = new CpuMeter(api.Pid, pg.PostmasterPid, emulators?.Pid).Start();
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

                // 3. Refunded lifecycles: create → deadline (PT30S) + grace (PT5S) → refunded.
                if (o.RefundLifecycles <= 0)
                {
                    Say();
                    Say("== Refunded lifecycles: not run (--refunds 0)");
                }
                else
                {
                    var grainsBeforeRefund = await GrainWritesAsync(escrowConnection);
                    var beforeRefund = await dbStats.SettledCommitsAsync();
                    var xidBeforeRefund = await dbStats.NextXidAsync();
                    if (statements)
                    {
                        await dbStats.ResetStatementsAsync();
                    }
                    var refundIds = await CreateManyAsync(client, recipients, o.RefundLifecycles, o.Concurrency, "ref", _ => WindowA, null);
                    await WaitRefundedByHttpAsync(client, refundIds.Select(r => r.Id).ToList(), TimeSpan.FromSeconds(35));
                    var afterRefund = await dbStats.SettledCommitsAsync();
                    var xidAfterRefund = await dbStats.NextXidAsync();
                    commitsPerRefund = (afterRefund - beforeRefund) / (double)refundIds.Count;
                    var grainsAfterRefund = await GrainWritesAsync(escrowConnection);
                    writesPerRefund = (xidAfterRefund - xidBeforeRefund) / (double)refundIds.Count;
                    var refundLate = await LatenessAsync(escrowConnection, refundIds.Select(r => r.Id).ToArray());
                    Say();
                    Say($"== Refunded lifecycles: create → deadline PT30S + grace PT5S → refunded; {refundIds.Count} escrows");
                    Say($"   durable commits       {commitsPerRefund:F2} per lifecycle (xact_commit delta {afterRefund - beforeRefund}, settled)");
                    Say($"   of which writing      {writesPerRefund:F2} per lifecycle (transaction ids assigned)");
                    Say($"   refund after deadline+grace: p50 {refundLate.P50:F2} s, p99 {refundLate.P99:F2} s, max {refundLate.Max:F2} s (refund_pending entry); refunded p99 {refundLate.RefundedP99:F2} s");
                    Say($"   grain state writes    {string.Join(", ", grainsAfterRefund.Select(g => $"{g.Key} {(g.Value - grainsBeforeRefund.GetValueOrDefault(g.Key)) / (double)refundIds.Count:F2}"))} per lifecycle");
                    if (statements)
                    {
                        PrintStatements(await dbStats.StatementsAsync(), refundIds.Count, "refunded lifecycle");
                    }
                    Figure("b_refund_commits", $"{commitsPerRefund:F1}");
                }
            }
            if (emulators is not null)
            {
                // The open-escrow scenario runs its API with the emulators inside: these would only add idle CPU.
                await emulators.DisposeAsync();
            }

            var ratio = release.PerSecond * commitsPerRelease / ceiling;
            Figure("a_lifecycles_per_s", $"{release.PerSecond:F0}");
            Figure("a_commits", $"{commitsPerRelease:F1}");
            Figure("c_ceiling", $"{ceiling:F0}");
            Figure("d_ratio", $"{100 * ratio:F0} %");
            Say();
            Say($"== Against the ceiling: {release.PerSecond:F1} lifecycles/s × {commitsPerRelease:F2} commits = {release.PerSecond * commitsPerRelease:F0} commits/s = {100 * ratio:F1} % of {ceiling:F0} (pgbench)");
            Say($"   counting writing commits only: {release.PerSecond:F1} × {writesPerRelease:F2} = {release.PerSecond * writesPerRelease:F0} commits/s = {100 * release.PerSecond * writesPerRelease / ceiling:F1} % of the ceiling");

            // 4. Many open escrows: memory, idle CPU, and how late refunds fire.
            var open = o.Open > 0 ? await RunOpenScenarioAsync(repo, escrowConnection, serviceConnection, pg, http, work, release.PerSecond) : null;

            Target("≤ 6 durable commits per released lifecycle", commitsPerRelease <= 6, $"{commitsPerRelease:F2}");
            Target("throughput × commits ≥ 50 % of the pgbench ceiling", ratio >= 0.5, $"{100 * ratio:F1} %");
            Target("p99 POST /v1/escrows ≤ 10 ms at half the max throughput", _pacedP99 <= 10, double.IsNaN(_pacedP99) ? "not measured (--paced-seconds 0)"
                : $"{_pacedP99:F1} ms" + (double.IsNaN(_oneClientP99) ? "" : $" (one client alone: {_oneClientP99:F1} ms)"));
            if (open is not null)
            {
                Target($"refunds fire ≤ 5 s (p99) after deadline + grace with {o.Open} open escrows", open.Value.LateP99 <= 5, $"fired p99 {open.Value.LateP99:F2} s (money movement completed: refunded p99 {open.Value.Late.RefundedP99:F1} s)" + (o.Open < 100_000 ? " (fewer than the 100 000 of the target)" : ""));
                // What the escrows cost is the API's idle CPU over its own with no escrows (the dashboard's metric
                // collection, timers, the thread pool cost that much with none), at the worse of the two moments.
                var idle = open.Value;
                Target("open escrows cost ≤ 5 % CPU idle", idle.IdleCostPercent <= 5, double.IsNaN(idle.IdleCpuPercent) ? "not measured (no quiet interval)"
                    : $"{idle.JustCreatedCostPercent:+0.00;-0.00} % of one core just after creation"
                    + (double.IsNaN(idle.SettledCpuPercent) ? "" : $", {idle.SettledCostPercent:+0.00;-0.00} % once idle activations were collected")
                    + $" (the API: {idle.BaselineCpuPercent:F2} % with no escrows, {idle.IdleCpuPercent:F2} %"
                    + (double.IsNaN(idle.SettledCpuPercent) ? "" : $" and {idle.SettledCpuPercent:F2} %") + " with them)"
                    + (o.Open < 100_000 ? $" with {o.Open} open" : ""));
            }
            Say();
            Say("== Targets");
            foreach (var t in _targets)
            {
                Say("   " + t);
            }
            Say();
            Say($"Total run time {(DateTime.UtcNow - started).TotalMinutes:F1} min.");
            await File.WriteAllTextAsync(Path.Combine(work, "transcript.txt"), _transcript.ToString());
            if (o.Append)
            {
                await AppendRowAsync(repo, release, commitsPerRelease, commitsPerRefund, writesPerRelease, writesPerRefund, ceiling, ratio, releaseCpu, open);
            }
        }

        private double _pacedP99 = double.NaN;
        private double _oneClientP99 = double.NaN;
        private string _pacedSlowest = "";
        private readonly string _loadAtStart = ProcStat.LoadAverage();
        private double _singleClientTps = double.NaN;
        private string _singleClientLatency = "n/a";

        private static string FindRepo() => ChildProcess.RepositoryRoot();

        private async Task<double> MeasureCeilingAsync(PostgresCluster pg, string work)
        {
            var db = pg.Private ? "ceiling" : pg.Admin.Database!;
            if (pg.Private)
            {
                await PostgresCluster.ExecuteAsync(pg.Admin.ConnectionString, "CREATE DATABASE ceiling");
            }
            var cs = pg.ConnectionStringFor(db);
            await PostgresCluster.ExecuteAsync(cs, "DROP TABLE IF EXISTS bench_ceiling_kv; CREATE TABLE bench_ceiling_kv (k integer PRIMARY KEY, v bigint NOT NULL)");
            var script = Path.Combine(work, "upsert.sql");
            await File.WriteAllTextAsync(script, """
                \set k random(1, 1000000)
                INSERT INTO bench_ceiling_kv (k, v) VALUES (:k, 1) ON CONFLICT (k) DO UPDATE SET v = bench_ceiling_kv.v + 1;

                """);
            if (!OperatingSystem.IsWindows())
            {
                // pgbench runs as the postgres user: it must read the script.
                File.SetUnixFileMode(work, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
                File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            }
            var env = new Dictionary<string, string>();
            if (!string.IsNullOrEmpty(pg.Admin.Password))
            {
                env["PGPASSWORD"] = pg.Admin.Password;
            }
            var output = new StringWriter();
            var clients = o.PgbenchClients.ToString(CultureInfo.InvariantCulture);
            var seconds = o.PgbenchSeconds.ToString(CultureInfo.InvariantCulture);
            string[] pgArgs = ["-n", "-c", clients, "-j", "2", "-T", seconds, "-f", script, "-h", pg.Admin.Host!, "-p", pg.Admin.Port.ToString(CultureInfo.InvariantCulture), "-U", pg.Admin.Username!, db];
            Say();
            Say($"== Ceiling: pgbench {string.Join(' ', pgArgs)} (single-row upsert, synchronous_commit=on)");
            await Processes.RunAsync(Path.Combine(pg.BinDirectory, "pgbench"), pgArgs, PostgresCluster.AsRoot && pg.Private, "pgbench", environment: env, output: output);
            var match = TpsPattern().Match(output.ToString());
            if (!match.Success)
            {
                throw new InvalidOperationException("pgbench printed no tps:\n" + output);
            }
            var tps = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
            var latency = LatencyPattern().Match(output.ToString());
            Say($"   ceiling               {tps:F0} commits/s" + (latency.Success ? $" (average latency {latency.Groups[1].Value} ms)" : ""));
            // One client: the latency of one durable commit, which every sequential write in a request pays.
            var single = new StringWriter();
            string[] oneArgs = ["-n", "-c", "1", "-j", "1", "-T", "5", "-f", script, "-h", pg.Admin.Host!, "-p", pg.Admin.Port.ToString(CultureInfo.InvariantCulture), "-U", pg.Admin.Username!, db];
            await Processes.RunAsync(Path.Combine(pg.BinDirectory, "pgbench"), oneArgs, PostgresCluster.AsRoot && pg.Private, "pgbench", environment: env, output: single);
            var oneTps = TpsPattern().Match(single.ToString());
            var oneLatency = LatencyPattern().Match(single.ToString());
            _singleClientTps = oneTps.Success ? double.Parse(oneTps.Groups[1].Value, CultureInfo.InvariantCulture) : double.NaN;
            _singleClientLatency = oneLatency.Success ? oneLatency.Groups[1].Value : "n/a";
            Say($"   one client            {_singleClientTps:F0} commits/s, {_singleClientLatency} ms per durable commit");
            await PostgresCluster.ExecuteAsync(cs, "DROP TABLE bench_ceiling_kv");
            return tps;
        }

        [GeneratedRegex(@"tps = ([0-9.]+) \(without initial connection time\)")]
        private static partial Regex TpsPattern();

        [GeneratedRegex(@"latency average = ([0-9.]+) ms")]
        private static partial Regex LatencyPattern();

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
                        results.Add(await ReleaseOneAsync(client, $"{_runId}-{tag}-{i}", recipients[Interlocked.Increment(ref _recipientCursor) % recipients.Length]));
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
                var key = $"{_runId}-paced-{i}";
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
                    var r = await client.CreateAsync($"{_runId}-{tag}-{i}", recipients[Interlocked.Increment(ref cursor) % recipients.Length], window(i));
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

        public readonly record struct Lateness(int Count, int Fired, double P50, double P99, double Max, double RefundedP99);

        /// <summary>
        /// How late each refund fired: the escrow's first refund_pending (or refunded) history entry minus its
        /// replyDeadline (deadline + grace), from escrow_ledger and escrow_projection.
        /// </summary>
        private static async Task<Lateness> LatenessAsync(string connectionString, Guid[] ids)
        {
            await using var c = new NpgsqlConnection(connectionString);
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand("""
                SELECT extract(epoch FROM min(l.at) FILTER (WHERE l.status IN ('refund_pending', 'refunded')) - p.reply_deadline)::float8,
                       extract(epoch FROM min(l.at) FILTER (WHERE l.status = 'refunded') - p.reply_deadline)::float8
                FROM escrow_projection p JOIN escrow_ledger l ON l.escrow_id = p.escrow_id
                WHERE p.escrow_id = ANY(@ids)
                GROUP BY p.escrow_id, p.reply_deadline
                """, c);
            cmd.Parameters.AddWithValue("ids", ids);
            var fired = new List<double>();
            var refunded = new List<double>();
            await using var reader = await cmd.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                if (!reader.IsDBNull(0))
                {
                    fired.Add(reader.GetDouble(0));
                }
                if (!reader.IsDBNull(1))
                {
                    refunded.Add(reader.GetDouble(1));
                }
            }
            return new Lateness(ids.Length, fired.Count, Percentiles.Of(fired, 50), Percentiles.Of(fired, 99), fired.Count > 0 ? fired.Max() : double.NaN, Percentiles.Of(refunded, 99));
        }

        private void PrintStatements(List<StatementCount> list, int lifecycles, string what)
        {
            var total = list.Sum(s => s.Calls);
            var reads = list.Where(s => DbStats.IsRead(s.Query)).Sum(s => s.Calls);
            Say($"   statements per {what} (pg_stat_statements, top-level; each is its own transaction unless inside BEGIN … COMMIT):");
            Say($"   {total / (double)lifecycles,8:F2} total, of which {reads / (double)lifecycles:F2} read-only (a commit in xact_commit but no WAL flush)");
            foreach (var s in list.Where(s => s.Calls / (double)lifecycles >= 0.01).Take(25))
            {
                Say($"   {s.Calls / (double)lifecycles,8:F2}  {s.Milliseconds / Math.Max(1, s.Calls),6:F2} ms  {DbStats.Shorten(s.Query)}");
            }
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

        private async Task<OpenFigures?> RunOpenScenarioAsync(string repo, string escrowConnection, string serviceConnection, PostgresCluster pg, HttpClient http, string work, double lifecycleRate)
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
            var recipients = await SetupRecipientsAsync(client, "ro" + _runId, o.Open * 5, payouts: false);
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
        private static async Task<Dictionary<string, long>> GrainWritesAsync(string connectionString)
        {
            await using var c = new NpgsqlConnection(connectionString);
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT grain_type, sum(version)::bigint FROM orleans_grain_state GROUP BY grain_type ORDER BY 1", c);
            var result = new Dictionary<string, long>(StringComparer.Ordinal);
            await using var reader = await cmd.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                result[reader.GetString(0)] = reader.GetInt64(1);
            }
            return result;
        }

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

        private static async Task<int> CountRefundedAsync(string connectionString, Guid[] ids)
        {
            await using var c = new NpgsqlConnection(connectionString);
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT count(*) FROM escrow_projection WHERE escrow_id = ANY(@ids) AND status = 'refunded'", c);
            cmd.Parameters.AddWithValue("ids", ids);
            return Convert.ToInt32(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
        }

        private async Task AppendRowAsync(string repo, ReleaseRun release, double commitsPerRelease, double commitsPerRefund, double writesPerRelease, double writesPerRefund, double ceiling, double ratio, CpuSample cpu, OpenFigures? open)
        {
            var commit = new StringWriter();
            await Processes.RunAsync("git", ["-C", repo, "rev-parse", "--short", "HEAD"], false, "git rev-parse", throwOnFailure: false, output: commit);
            var dirty = new StringWriter();
            await Processes.RunAsync("git", ["-C", repo, "status", "--porcelain", "--untracked-files=no"], false, "git status", throwOnFailure: false, output: dirty);
            var machine = $"{Environment.ProcessorCount} cores, {ProcStat.MemTotalGiB():F0} GiB, {ProcStat.CpuModel()}";
            var o2 = open;
            var row = string.Join(" | ",
                DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
                machine,
                commit.ToString().Trim() + (dirty.ToString().Trim().Length > 0 ? "+dirty" : ""),
                "`" + o.CommandLine + "`",
                $"{release.Count} × {o.Concurrency}: {release.PerSecond:F0}/s",
                $"{commitsPerRelease:F1} / {commitsPerRefund:F1} (writing {writesPerRelease:F1} / {writesPerRefund:F1})",
                $"{ceiling:F0} (1 client: {_singleClientTps:F0}, {_singleClientLatency} ms)",
                $"{100 * ratio:F0} %",
                $"{Percentiles.Of(release.CreateMs, 50):F1}/{Percentiles.Of(release.CreateMs, 99):F1} · {_figures.GetValueOrDefault("e_post_p50_half", "n/a")}/{_figures.GetValueOrDefault("e_post_p99_half", "n/a")}",
                $"{Percentiles.Of(release.ReplyToReleasedMs, 50):F1}/{Percentiles.Of(release.ReplyToReleasedMs, 99):F1} ms (reply call)",
                $"API {cpu.ApiPercent:F0} % · PG {cpu.PostgresPercent:F0} % · gen {cpu.LoadGeneratorPercent:F0} % · others {cpu.OtherPercent:F0} % (load avg {_loadAtStart})",
                o2 is { } x ? $"{x.Open}: {x.BytesPerEscrow / 1024:F1} KiB" : "n/a",
                o2 is { } y ? $"{y.Late.P50:F2}/{y.Late.P99:F2}/{y.Late.Max:F2} s; refunded p99 {y.Late.RefundedP99:F1} s" : "n/a",
                o2 is { } z ? (double.IsNaN(z.IdleCpuPercent) ? "n/a" : $"{z.IdleCpuPercent:F2} % ({z.IdleSeconds:F0} s, {ShowCount(z.IdleActivations)} activations)"
                    + (double.IsNaN(z.SettledCpuPercent) ? "" : $"; settled {z.SettledCpuPercent:F2} % ({ShowCount(z.SettledActivations)} activations)")
                    + $"; no escrows {z.BaselineCpuPercent:F2} %: cost {z.IdleCostPercent:+0.00;-0.00} %") : "n/a");
            var path = Path.Combine(repo, "docs", "BENCHMARKS.md");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            if (!File.Exists(path))
            {
                await File.WriteAllTextAsync(path, "# Benchmarks\n\n## Runs\n\n" + RunsHeader);
            }
            var text = await File.ReadAllTextAsync(path);
            await File.AppendAllTextAsync(path, (text.EndsWith('\n') ? "" : "\n") + "| " + row + " |\n");
            Say($"Appended the row to {path}");
        }

        public const string RunsHeader = """
            | date | machine | commit | command | released lifecycles: n × clients: rate | commits per released / refunded lifecycle | pgbench ceiling (commits/s) | (rate × commits) ÷ ceiling | POST /v1/escrows p50/p99 ms: at max · at half | reply → released p50/p99 | CPU at max (100 % = one core) | open escrows: RSS per escrow | refund fired after deadline+grace p50/p99/max; completed p99 | idle CPU of the API with the open escrows |
            |---|---|---|---|---|---|---|---|---|---|---|---|---|---|

            """;
    }
}
