using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Orleans;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Runtime;

namespace Escrow.Benchmarks;

/// <summary>Command line of <c>failover</c>.</summary>
public sealed record FailoverOptions
{
    public int Escrows { get; init; } = 300;
    public int Seconds { get; init; } = 90;
    public int Window { get; init; } = 30;
    public int KillAfter { get; init; } = 50;
    public string? Connection { get; init; }
    public bool SkipBuild { get; init; }
    public string CommandLine { get; init; } = "";

    public const int GraceSeconds = 5;

    public static FailoverOptions Parse(string[] args)
    {
        var o = new FailoverOptions();
        var killGiven = false;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int NextInt(int min)
            {
                var name = args[i];
                var text = Next();
                return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min
                    ? v
                    : throw new ArgumentException($"{name} needs an integer ≥ {min}, not '{text}'.");
            }
            switch (args[i])
            {
                case "--escrows": o = o with { Escrows = NextInt(10) }; break;
                case "--seconds": o = o with { Seconds = NextInt(20) }; break;
                case "--window": o = o with { Window = NextInt(10) }; break;
                case "--kill-after": o = o with { KillAfter = NextInt(5) }; killGiven = true; break;
                case "--connection": o = o with { Connection = Next() }; break;
                case "--skip-build": o = o with { SkipBuild = true }; break;
                case "--help" or "-h": throw new HelpRequested();
                default: throw new ArgumentException($"Unknown failover option {args[i]}.");
            }
        }
        if (!killGiven)
        {
            // Deadlines have been firing for 15 s and replies keep arriving: the middle of releases and refunds.
            o = o with { KillAfter = Math.Min(o.Window + GraceSeconds + 15, o.Seconds * 2 / 3) };
        }
        if (o.KillAfter >= o.Seconds)
        {
            throw new ArgumentException($"--kill-after ({o.KillAfter}) must be before the end of the load (--seconds {o.Seconds}).");
        }
        var shown = args.Select(a => a.Contains(' ', StringComparison.Ordinal) || a.Contains(';', StringComparison.Ordinal) ? "\"" + a + "\"" : a);
        return o with { CommandLine = "dotnet run -c Release --project Escrow.Benchmarks -- failover" + (args.Length > 0 ? " " + string.Join(' ', shown) : "") };
    }

    public const string Usage = """
        dotnet run -c Release --project Escrow.Benchmarks -- failover [options]
          Two silos clustered through PostgreSQL (ADO.NET): process 1 = Escrow.Api (HTTP, co-hosted silo, sandboxes),
          process 2 = Escrow.Silo; a steady load of escrows (half replied to, half left to the deadline); SIGKILL of
          process 2 in the middle; time to converge and the money invariants of every escrow. Exit 1 on a violation.
          --escrows N           escrows created at a steady rate over the load (default 300)
          --seconds S           duration of the load (default 90)
          --window W            response window in seconds (default 30; grace is 5 s)
          --kill-after K        SIGKILL of process 2 K seconds into the load (default min(W + 20, 2/3 of S))
          --connection "..."    use this PostgreSQL instead of starting a private one
          --skip-build          use the Release builds already in Escrow.Api/bin and Escrow.Silo/bin
        """;
}

/// <summary>
/// Real-process failover: two silos, a steady load, kill -9 of the silo that does not host the sandboxes, then
/// convergence and the invariants of every escrow checked through the survivor's API, the Stripe sandbox and the
/// ledger.
/// </summary>
public sealed class FailoverScenario(FailoverOptions o)
{
    private static readonly string[] Terminal = ["released", "refunded", "payment_failed", "cancelled"];
    private readonly string _runId = DateTime.UtcNow.ToString("MMddHHmmss", CultureInfo.InvariantCulture) + Guid.NewGuid().ToString("N")[..4];
    private readonly StringBuilder _transcript = new();
    private readonly ConcurrentDictionary<string, int> _errors = new(StringComparer.Ordinal);
    private readonly ConcurrentBag<(DateTime At, string What)> _errorTimes = [];
    private readonly List<string> _violations = [];

    private void Say(string line = "")
    {
        Console.WriteLine(line);
        lock (_transcript)
        {
            _transcript.AppendLine(line);
        }
    }

    private sealed class Track(int index, string key, string recipient, bool wantsReply)
    {
        public int Index { get; } = index;
        public string Key { get; } = key;
        public string Recipient { get; } = recipient;
        public bool WantsReply { get; } = wantsReply;
        public Guid? Id { get; set; }
        public DateTime? CreatedAt { get; set; }
        public DateTime? ReplyDeadline { get; set; }
        public DateTime? ReplyFirstAttempt { get; set; }
        public DateTime? ReplyAccepted { get; set; }
        public bool ReplyAmbiguous { get; set; }
        public string? ReplyFinal { get; set; }
        public List<string> Attempts { get; } = [];
    }

    public async Task<int> RunAsync()
    {
        var repo = FindRepo();
        var work = Path.Combine(Path.GetTempPath(), "escrow-failover-" + _runId);
        Directory.CreateDirectory(work);
        var started = DateTime.UtcNow;
        Say($"Escrow failover {_runId}: {o.CommandLine}");
        Say($"Machine: {Environment.ProcessorCount} cores, {ProcStat.MemTotalGiB():F1} GiB, {ProcStat.CpuModel()}; load average {ProcStat.LoadAverage()} at start");
        Say($"Settings: {o.Escrows} escrows over {o.Seconds} s ({o.Escrows / (double)o.Seconds:F1}/s), window PT{o.Window}S + grace PT{FailoverOptions.GraceSeconds}S, "
            + $"half replied to; SIGKILL of process 2 at +{o.KillAfter} s; logs in {work}");
        if (!o.SkipBuild)
        {
            await ApiProcess.BuildAsync(repo);
        }

        await using var pg = await PostgresCluster.StartOrUseAsync(o.Connection);
        Say($"PostgreSQL: {pg.Describe}");
        var connection = await pg.CreateDatabaseAsync("escrow_failover_" + _runId);
        using var http = EscrowClient.CreateHttp();

        var clusterId = "failover-" + _runId;
        const string serviceId = "escrow-failover";
        var ports = Enumerable.Range(0, 4).Select(_ => PostgresCluster.FreePort()).ToArray();
        int[] windows = [o.Window];
        Dictionary<string, string> Cluster(int siloPort, int gatewayPort) => new()
        {
            ["Silo__Clustering"] = "AdoNet",
            ["Silo__ClusterId"] = clusterId,
            ["Silo__ServiceId"] = serviceId,
            ["Silo__AdvertisedIPAddress"] = "127.0.0.1",
            ["Silo__SiloPort"] = siloPort.ToString(CultureInfo.InvariantCulture),
            ["Silo__GatewayPort"] = gatewayPort.ToString(CultureInfo.InvariantCulture),
            // Both silos share process 1's sandboxes: one Postmark token, the sandbox's Stripe key.
            ["Postmark__ServerToken"] = "sandbox-postmark-failover",
            ["Logging__Console__TimestampFormat"] = "HH:mm:ss.fff ",
            ["Logging__Console__UseUtcTimestamp"] = "true",
            // Membership decisions in the logs (suspicions, death declarations).
            ["Logging__LogLevel__Orleans.Runtime.MembershipService"] = "Information",
        };

        var env1 = Cluster(ports[0], ports[1]);
        await using var api = await ApiProcess.StartAsync(repo, connection, windows, Path.Combine(work, "process1-api.log"), http, env1);
        Say($"Process 1: Escrow.Api pid {api.Pid} at {api.BaseUrl}, silo 127.0.0.1:{ports[0]}, gateway {ports[1]} (log {api.LogPath})");
        var env2 = ApiProcess.ServiceEnvironment(connection, windows);
        foreach (var (k, v) in Cluster(ports[2], ports[3]))
        {
            env2[k] = v;
        }
        env2["Stripe__SecretKey"] = "sk_test_sandbox";
        env2["Stripe__ApiBase"] = api.BaseUrl + "/_sandbox/stripe";
        env2["Postmark__ApiBase"] = api.BaseUrl + "/_sandbox/postmark";
        await using var silo = await SiloProcess.StartAsync(repo, env2, Path.Combine(work, "process2-silo.log"), http);
        Say($"Process 2: Escrow.Silo pid {silo.Pid} at {silo.BaseUrl}, silo 127.0.0.1:{ports[2]}, gateway {ports[3]}; Stripe and Postmark → process 1's sandboxes (log {silo.LogPath})");

        var watch = Stopwatch.StartNew();
        while ((await MembershipAsync(connection, clusterId)).Count(m => m.Status == 3) < 2)
        {
            if (watch.Elapsed > TimeSpan.FromMinutes(2) || silo.HasExited)
            {
                throw new InvalidOperationException("The two silos did not both become Active in membership within 2 minutes.");
            }
            await Task.Delay(200);
        }
        var members = await MembershipAsync(connection, clusterId);
        Say($"Membership: {string.Join(", ", members.Select(m => $"{m.Address}:{m.Port} {StatusName(m.Status)}"))} ({watch.Elapsed.TotalSeconds:F1} s after process 2 answered)");

        var client = new EscrowClient(http, api.BaseUrl);
        var recipients = Enumerable.Range(0, Math.Max(8, o.Escrows / 100)).Select(i => $"rf{_runId}-{i}").ToArray();
        watch.Restart();
        await Parallel.ForEachAsync(recipients, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (id, _) =>
        {
            await client.PutRecipientAsync(id, 1000);
            await client.EnablePayoutsAsync(id);
        });
        Say($"Recipients: {recipients.Length}, payouts enabled through the sandbox, in {watch.Elapsed.TotalSeconds:F1} s");

        // ---- the load ----
        var tracks = Enumerable.Range(0, o.Escrows)
            .Select(i => new Track(i, $"{_runId}-f-{i}", recipients[i % recipients.Length], wantsReply: i % 2 == 0)).ToArray();
        var rate = o.Escrows / (double)o.Seconds;
        var loadStart = DateTime.UtcNow;
        var killAt = DateTime.MaxValue;
        var placement = new Dictionary<Guid, int>();
        var grainCounts = new List<string>();
        var lifecycles = new List<Task>(o.Escrows);
        DateTime? deadAt = null;
        DateTime? suspectedAt = null;
        var killTask = Task.Run(async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(o.KillAfter));
            (placement, grainCounts) = await PlacementAsync(connection, clusterId, serviceId, ports[2]);
            killAt = DateTime.UtcNow;
            silo.Kill();
            Say($"SIGKILL of process 2 (pid {silo.Pid}) at +{(killAt - loadStart).TotalSeconds:F1} s ({killAt:HH:mm:ss.fff} UTC)");
            // Membership, polled every 0.1 s: the survivor's first suspicion, then the death declaration.
            while (DateTime.UtcNow < killAt.AddMinutes(5))
            {
                var row = (await MembershipAsync(connection, clusterId)).FirstOrDefault(m => m.Port == ports[2]);
                if (suspectedAt is null && row.Suspected)
                {
                    suspectedAt = DateTime.UtcNow;
                }
                if (row.Status == 6)
                {
                    deadAt = DateTime.UtcNow;
                    return;
                }
                await Task.Delay(100);
            }
        });
        var loadWatch = Stopwatch.StartNew();
        for (var i = 0; i < tracks.Length; i++)
        {
            var wait = TimeSpan.FromSeconds(i / rate) - loadWatch.Elapsed;
            if (wait > TimeSpan.FromMilliseconds(1))
            {
                await Task.Delay(wait);
            }
            var t = tracks[i];
            lifecycles.Add(Task.Run(() => LifecycleAsync(client, t)));
            if (i % Math.Max(1, (int)(rate * 15)) == 0 && i > 0)
            {
                Console.WriteLine($"   ... +{loadWatch.Elapsed.TotalSeconds:F0} s: {i} escrows started, {tracks.Count(x => x.Id is not null)} created, errors {_errors.Values.Sum()}");
            }
        }
        Say($"Load: {tracks.Length} escrows started in {loadWatch.Elapsed.TotalSeconds:F1} s; waiting for the lifecycles (replies run until their deadlines)");

        await Task.WhenAll(lifecycles);
        await killTask;
        Say(deadAt is { } d
            ? $"Membership: process 2 suspected (suspect_times set) {(suspectedAt is { } su ? $"{(su - killAt).TotalSeconds:F1} s" : "never seen")}, declared Dead {(d - killAt).TotalSeconds:F1} s after the SIGKILL (table polled every 0.1 s)"
            : "Membership: process 2 NOT declared dead within 5 minutes");
        if (deadAt is null)
        {
            _violations.Add("process 2 never declared dead in membership");
        }

        // ---- convergence ----
        var ids = tracks.Where(t => t.Id is not null).Select(t => t.Id!.Value).ToArray();
        var preKill = tracks.Where(t => t.Id is not null && t.CreatedAt < killAt).ToArray();
        watch.Restart();
        var lastPending = -1;
        while (true)
        {
            var pending = await NonTerminalAsync(connection, ids);
            if (pending == 0)
            {
                break;
            }
            if (pending != lastPending)
            {
                Console.WriteLine($"   ... {pending} escrows not yet terminal");
                lastPending = pending;
            }
            if (watch.Elapsed > TimeSpan.FromMinutes(5))
            {
                _violations.Add($"{pending} escrows not terminal 5 minutes after the load's lifecycles ended");
                break;
            }
            await Task.Delay(500);
        }
        var allTerminalSeen = DateTime.UtcNow;
        var terminalAt = await FirstTerminalAtAsync(connection, ids);
        var fired = await RefundFiredAsync(connection, ids);

        Say();
        Say("== Placement just before the SIGKILL (IManagementGrain.GetDetailedGrainStatistics through an Orleans client)");
        foreach (var line in grainCounts)
        {
            Say("   " + line);
        }
        var onDead = preKill.Where(t => placement.TryGetValue(t.Id!.Value, out var port) && port == ports[2]).ToArray();
        var activeAtKill = preKill.Count(t => placement.ContainsKey(t.Id!.Value));
        Say($"   escrows created before the kill: {preKill.Length}; active at the kill: {activeAtKill}, of which on process 2: {onDead.Length}");

        Say();
        Say("== Outage seen by the load generator (every failed HTTP attempt; creates and replies are retried with the same Idempotency-Key / until the reply deadline)");
        if (_errors.IsEmpty)
        {
            Say("   no errors");
        }
        foreach (var (what, count) in _errors.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            Say($"   {what,-32} {count}");
        }
        var errorTimes = _errorTimes.ToArray();
        if (errorTimes.Length > 0)
        {
            Say($"   errors from +{(errorTimes.Min(e => e.At) - killAt).TotalSeconds:F1} s to +{(errorTimes.Max(e => e.At) - killAt).TotalSeconds:F1} s relative to the kill");
        }
        var outageCalls = _calls.Where(c => c.Start >= killAt && c.Start < killAt.AddSeconds(60)).Select(c => c.Ms).ToList();
        if (outageCalls.Count > 0)
        {
            Say($"   HTTP calls started in the 60 s after the kill: {outageCalls.Count}, p50 {Percentiles.Of(outageCalls, 50):F0} ms, p99 {Percentiles.Of(outageCalls, 99):F0} ms, max {outageCalls.Max():F0} ms; {outageCalls.Count(ms => ms > 1000)} took over 1 s");
        }
        foreach (var t in tracks.Where(t => t.WantsReply && (t.ReplyAmbiguous || t.ReplyAccepted is null)))
        {
            Say($"   reply with a failed attempt: escrow {t.Id} (reply deadline {t.ReplyDeadline:HH:mm:ss.fff}, kill {killAt:HH:mm:ss.fff}): {string.Join("; ", t.Attempts.Select(a => a.Split(": {", 2)[0] + (a.Contains("already_replied", StringComparison.Ordinal) ? " already_replied" : "")))}");
        }
        Say($"   created {ids.Length}/{tracks.Length} ({tracks.Count(t => t.Id is not null && t.CreatedAt >= killAt)} after the kill); replies: {tracks.Count(t => t.ReplyAccepted is not null && !t.ReplyAmbiguous)} accepted at the first attempt, " +
            $"{tracks.Count(t => t.ReplyFinal == "already_replied after a failed attempt")} answered 5xx although taken (the retry got 409 already_replied), " +
            $"{tracks.Count(t => t.ReplyAmbiguous && t.ReplyAccepted is not null && t.ReplyFinal != "already_replied after a failed attempt")} accepted on a retry, " +
            $"{tracks.Count(t => t.WantsReply && t.ReplyAccepted is null)} never accepted");

        // Time to converge: from the kill until every escrow created before it is terminal (ledger times).
        Say();
        Say("== Convergence");
        var preTerminal = preKill.Select(t => terminalAt.TryGetValue(t.Id!.Value, out var at) ? at : (DateTime?)null).ToArray();
        if (preTerminal.All(x => x is not null) && preKill.Length > 0)
        {
            var converge = (preTerminal.Max()!.Value - killAt).TotalSeconds;
            // What the escrows created before the kill would need anyway: their last reply or deadline + grace.
            var due = preKill.Select(Due).Max();
            Say($"   time to converge      {converge:F1} s from the SIGKILL until all {preKill.Length} escrows created before it were terminal (first terminal ledger entry)");
            Say($"   of which unavoidable  {(due - killAt).TotalSeconds:F1} s: the last of them was due (reply sent or deadline + grace) then; " +
                $"the last became terminal {(preTerminal.Max()!.Value - due).TotalSeconds:F1} s after that");
        }
        else
        {
            Say($"   NOT converged: {preTerminal.Count(x => x is null)} escrows created before the kill have no terminal ledger entry");
        }
        var all = tracks.Where(t => t.Id is not null && terminalAt.ContainsKey(t.Id.Value)).ToArray();
        if (all.Length > 0)
        {
            Say($"   all {ids.Length} escrows terminal {(terminalAt.Values.Max() - killAt).TotalSeconds:F1} s after the kill (seen by polling at +{(allTerminalSeen - killAt).TotalSeconds:F1} s)");
        }
        void Excess(string what, IEnumerable<Track> set)
        {
            var list = set.Where(t => terminalAt.ContainsKey(t.Id!.Value)).Select(t => (terminalAt[t.Id!.Value] - Due(t)).TotalSeconds).ToList();
            if (list.Count > 0)
            {
                Say($"   {what,-44} n {list.Count,4}: terminal after due p50 {Percentiles.Of(list, 50):F2} s, p99 {Percentiles.Of(list, 99):F2} s, max {list.Max():F2} s");
            }
        }
        bool DueAfterKill(Track t) => Due(t) >= killAt;
        var deadSet = onDead.Select(t => t.Id!.Value).ToHashSet();
        Excess("due after the kill, on process 2 at the kill", preKill.Where(t => DueAfterKill(t) && deadSet.Contains(t.Id!.Value)));
        Excess("due after the kill, elsewhere", preKill.Where(t => DueAfterKill(t) && !deadSet.Contains(t.Id!.Value)));
        Excess("created after the kill", tracks.Where(t => t.Id is not null && t.CreatedAt >= killAt));

        Say();
        Say("== Deadline refunds (first refund_pending/refunded ledger entry − replyDeadline)");
        void Late(string what, IEnumerable<Track> set)
        {
            var list = set.Where(t => fired.ContainsKey(t.Id!.Value)).Select(t => fired[t.Id!.Value]).ToList();
            if (list.Count > 0)
            {
                Say($"   {what,-48} n {list.Count,4}: p50 {Percentiles.Of(list, 50):F2} s, p99 {Percentiles.Of(list, 99):F2} s, max {list.Max():F2} s");
            }
            else
            {
                Say($"   {what,-48} n    0");
            }
        }
        var refundSet = tracks.Where(t => t.Id is not null && !t.WantsReply).ToArray();
        Late("on process 2 at the kill, deadline after the kill", refundSet.Where(t => deadSet.Contains(t.Id!.Value) && t.ReplyDeadline >= killAt));
        Late("survivor / not active, deadline after the kill", refundSet.Where(t => !deadSet.Contains(t.Id!.Value) && t.ReplyDeadline >= killAt && t.CreatedAt < killAt));
        Late("deadline before the kill", refundSet.Where(t => t.ReplyDeadline < killAt));
        Late("created after the kill", refundSet.Where(t => t.CreatedAt >= killAt));

        // ---- invariants of every escrow ----
        Say();
        Say("== Invariants (every escrow: survivor's API, Stripe sandbox, ledger)");
        await CheckInvariantsAsync(connection, http, api.BaseUrl, tracks);
        Say($"   violations: {_violations.Count}");
        foreach (var v in _violations.Take(30))
        {
            Say("   - " + v);
        }
        Say();
        Say($"Total run time {(DateTime.UtcNow - started).TotalMinutes:F1} min; transcript {Path.Combine(work, "transcript.txt")}");
        await File.WriteAllTextAsync(Path.Combine(work, "transcript.txt"), _transcript.ToString());
        return _violations.Count == 0 ? 0 : 1;
    }

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

    private readonly record struct Member(string Address, int Port, int Status, bool Suspected);

    private static string StatusName(int status) => status switch
    {
        1 => "Created",
        2 => "Joining",
        3 => "Active",
        4 => "ShuttingDown",
        5 => "Stopping",
        6 => "Dead",
        _ => status.ToString(CultureInfo.InvariantCulture),
    };

    private static async Task<List<Member>> MembershipAsync(string connection, string clusterId)
    {
        await using var c = new NpgsqlConnection(connection);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT address, port, status, coalesce(suspect_times, '') <> '' FROM orleans_membership WHERE deployment_id = @d ORDER BY port", c);
        cmd.Parameters.AddWithValue("d", clusterId);
        var list = new List<Member>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            list.Add(new Member(reader.GetString(0), reader.GetInt32(1), reader.GetInt32(2), reader.GetBoolean(3)));
        }
        return list;
    }

    /// <summary>Which silo (by silo port) hosts each escrow activation, and activation counts per grain type and silo.</summary>
    private async Task<(Dictionary<Guid, int> Escrows, List<string> Counts)> PlacementAsync(string connection, string clusterId, string serviceId, int process2Port)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddOrleansClient(c =>
        {
            c.UseAdoNetClustering(a =>
            {
                a.Invariant = "Npgsql";
                a.ConnectionString = connection;
            });
            c.Configure<ClusterOptions>(x =>
            {
                x.ClusterId = clusterId;
                x.ServiceId = serviceId;
            });
        });
        await using var provider = services.BuildServiceProvider();
        var hosted = provider.GetServices<IHostedService>().ToList();
        var escrows = new Dictionary<Guid, int>();
        var counts = new List<string>();
        try
        {
            foreach (var h in hosted)
            {
                await h.StartAsync(CancellationToken.None);
            }
            var management = provider.GetRequiredService<IClusterClient>().GetGrain<IManagementGrain>(0);
            var watch = Stopwatch.StartNew();
            var stats = await management.GetDetailedGrainStatistics();
            foreach (var s in stats)
            {
                if (s.GrainId.Type.ToString() == "escrow" && Guid.TryParse(s.GrainId.Key.ToString(), out var id))
                {
                    escrows[id] = s.SiloAddress.Endpoint.Port;
                }
            }
            foreach (var g in stats.Where(s => !s.GrainType.StartsWith("Orleans", StringComparison.Ordinal))
                         .GroupBy(s => s.GrainId.Type.ToString()).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                var onTwo = g.Count(s => s.SiloAddress.Endpoint.Port == process2Port);
                counts.Add($"{g.Key,-28} {g.Count(),5} activations: process 1 {g.Count() - onTwo}, process 2 {onTwo}");
            }
            counts.Add($"(snapshot took {watch.Elapsed.TotalSeconds:F2} s)");
        }
        catch (Exception e) when (e is OrleansException or TimeoutException or InvalidOperationException)
        {
            counts.Add($"placement snapshot failed: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            foreach (var h in hosted.AsEnumerable().Reverse())
            {
                try
                {
                    using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                    await h.StopAsync(cts.Token);
                }
                catch (Exception e) when (e is OrleansException or OperationCanceledException)
                {
                }
            }
        }
        return (escrows, counts);
    }

    // ---- ledger queries ----

    private static async Task<int> NonTerminalAsync(string connection, Guid[] ids)
    {
        await using var c = new NpgsqlConnection(connection);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("""
            SELECT count(*) FROM unnest(@ids) AS i(id)
            LEFT JOIN escrow_projection p ON p.escrow_id = i.id
            WHERE p.status IS NULL OR p.status NOT IN ('released', 'refunded', 'payment_failed', 'cancelled')
            """, c);
        cmd.Parameters.AddWithValue("ids", ids);
        return Convert.ToInt32(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    private static async Task<Dictionary<Guid, DateTime>> FirstTerminalAtAsync(string connection, Guid[] ids)
    {
        await using var c = new NpgsqlConnection(connection);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("""
            SELECT escrow_id, min(at) FROM escrow_ledger
            WHERE escrow_id = ANY(@ids) AND status IN ('released', 'refunded', 'payment_failed', 'cancelled')
            GROUP BY escrow_id
            """, c);
        cmd.Parameters.AddWithValue("ids", ids);
        var result = new Dictionary<Guid, DateTime>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            result[reader.GetGuid(0)] = reader.GetDateTime(1).ToUniversalTime();
        }
        return result;
    }

    /// <summary>Seconds from replyDeadline to the first refund_pending/refunded entry (the deadline reminder acting).</summary>
    private static async Task<Dictionary<Guid, double>> RefundFiredAsync(string connection, Guid[] ids)
    {
        await using var c = new NpgsqlConnection(connection);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("""
            SELECT p.escrow_id, extract(epoch FROM min(l.at) - p.reply_deadline)::float8
            FROM escrow_projection p JOIN escrow_ledger l ON l.escrow_id = p.escrow_id
            WHERE p.escrow_id = ANY(@ids) AND l.status IN ('refund_pending', 'refunded')
            GROUP BY p.escrow_id, p.reply_deadline
            """, c);
        cmd.Parameters.AddWithValue("ids", ids);
        var result = new Dictionary<Guid, double>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            result[reader.GetGuid(0)] = reader.GetDouble(1);
        }
        return result;
    }

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
        var ledgerLast = new Dictionary<Guid, string>();
        var projection = new Dictionary<Guid, string>();
        await using (var c = new NpgsqlConnection(connection))
        {
            await c.OpenAsync();
            await using (var cmd = new NpgsqlCommand("SELECT DISTINCT ON (escrow_id) escrow_id, status FROM escrow_ledger ORDER BY escrow_id, seq DESC", c))
            await using (var reader = await cmd.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    ledgerLast[reader.GetGuid(0)] = reader.GetString(1);
                }
            }
            await using (var cmd = new NpgsqlCommand("SELECT escrow_id, status FROM escrow_projection", c))
            await using (var reader = await cmd.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    projection[reader.GetGuid(0)] = reader.GetString(1);
                }
            }
        }
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
