namespace Escrow.Benchmarks;

/// <summary>
/// Real-process failover: two silos, a steady load, kill -9 of the silo that does not host the sandboxes, then
/// convergence and the invariants of every escrow checked through the survivor's API, the Stripe sandbox and the
/// ledger.
/// </summary>
public sealed partial class FailoverScenario(FailoverOptions o)
{
    private static readonly string[] Terminal = ["released", "refunded", "payment_failed", "cancelled"];
    private readonly string _runId = DateTime.UtcNow.ToString("MMddHHmmss", CultureInfo.InvariantCulture) + Guid.NewGuid().ToString("N")[..4];
    private readonly Transcript _transcript = new();
    private readonly ConcurrentDictionary<string, int> _errors = new(StringComparer.Ordinal);
    private readonly ConcurrentBag<(DateTime At, string What)> _errorTimes = [];
    private readonly List<string> _violations = [];

    private void Say(string line = "") => _transcript.Say(line);

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
        await _transcript.SaveAsync(work);
        return _violations.Count == 0 ? 0 : 1;
    }
}
