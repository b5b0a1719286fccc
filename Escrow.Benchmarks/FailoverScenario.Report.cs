namespace Escrow.Benchmarks;

/// <summary>The transcript's sections after the load: placement, the outage seen by clients, convergence, deadline refunds.</summary>
public sealed partial class FailoverScenario
{
    /// <summary>Where the escrows were active at the kill; answers the ids of those on process 2.</summary>
    private HashSet<Guid> ReportPlacement(KillSeen kill, Track[] preKill, int process2Port)
    {
        Say();
        Say("== Placement just before the SIGKILL (IManagementGrain.GetDetailedGrainStatistics through an Orleans client)");
        foreach (var line in kill.GrainCounts)
        {
            Say("   " + line);
        }
        var onDead = preKill.Where(t => kill.Placement.TryGetValue(t.Id!.Value, out var port) && port == process2Port).ToArray();
        var activeAtKill = preKill.Count(t => kill.Placement.ContainsKey(t.Id!.Value));
        Say($"   escrows created before the kill: {preKill.Length}; active at the kill: {activeAtKill}, of which on process 2: {onDead.Length}");
        return [.. onDead.Select(t => t.Id!.Value)];
    }

    private void ReportOutage(DateTime killAt, Track[] tracks, int created)
    {
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
        Say($"   created {created}/{tracks.Length} ({tracks.Count(t => t.Id is not null && t.CreatedAt >= killAt)} after the kill); replies: {tracks.Count(t => t.ReplyAccepted is not null && !t.ReplyAmbiguous)} accepted at the first attempt, " +
            $"{tracks.Count(t => t.ReplyFinal == "already_replied after a failed attempt")} answered 5xx although taken (the retry got 409 already_replied), " +
            $"{tracks.Count(t => t.ReplyAmbiguous && t.ReplyAccepted is not null && t.ReplyFinal != "already_replied after a failed attempt")} accepted on a retry, " +
            $"{tracks.Count(t => t.WantsReply && t.ReplyAccepted is null)} never accepted");
    }

    /// <summary>From the kill until every escrow created before it is terminal (ledger times), and how late each group was.</summary>
    private void ReportConvergence(DateTime killAt, Track[] tracks, Track[] preKill, HashSet<Guid> deadSet, Dictionary<Guid, DateTime> terminalAt,
        DateTime allTerminalSeen, int created)
    {
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
            Say($"   all {created} escrows terminal {(terminalAt.Values.Max() - killAt).TotalSeconds:F1} s after the kill (seen by polling at +{(allTerminalSeen - killAt).TotalSeconds:F1} s)");
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
        Excess("due after the kill, on process 2 at the kill", preKill.Where(t => DueAfterKill(t) && deadSet.Contains(t.Id!.Value)));
        Excess("due after the kill, elsewhere", preKill.Where(t => DueAfterKill(t) && !deadSet.Contains(t.Id!.Value)));
        Excess("created after the kill", tracks.Where(t => t.Id is not null && t.CreatedAt >= killAt));
    }

    private void ReportDeadlineRefunds(DateTime killAt, Track[] tracks, HashSet<Guid> deadSet, Dictionary<Guid, double> fired)
    {
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
    }
}
