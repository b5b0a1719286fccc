using Escrow.Grains.Storage;

namespace Escrow.Api.Admin;

/// <summary>
/// Names an operator action (the audit trail's action name). Every state-changing admin endpoint carries one, and so
/// does every console form that performs the same action, so a test can check that the two offer the same actions.
/// </summary>
public sealed record AdminActionMetadata(string Action);

/// <summary>
/// What an operator can do, carried out once for every caller: the admin API and the console both call these
/// methods, so an action goes through the same grain call and leaves the same audit row whichever way it came.
/// </summary>
public sealed class AdminOperations(IGrainFactory grains, IEscrowStore store, TimeProvider clock)
{
    public const int ReasonLengthMax = 1000;
    public const string ResetBreaker = "circuit_breaker.reset";
    public const string RunReconciliation = "reconciliation.run";
    public const string AcknowledgeAlert = "alert.ack";

    public static string AuditAction(OperatorActionKind kind) => "escrow." + kind switch
    {
        OperatorActionKind.Release => "release",
        OperatorActionKind.Refund => "refund",
        OperatorActionKind.RetryTransfer => "retry_transfer",
        OperatorActionKind.ApproveRefund => "approve_refund",
        OperatorActionKind.ResolveDispute => "resolve_dispute",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>Null when the reason is acceptable for this action; otherwise what is wrong with it.</summary>
    public static string? ReasonError(OperatorActionKind kind, string? reason) =>
        reason is { Length: > ReasonLengthMax } || (kind is OperatorActionKind.Refund or OperatorActionKind.Release && string.IsNullOrWhiteSpace(reason))
            ? $"A reason (1 to {ReasonLengthMax} characters) is required for a release or a refund; it goes to the audit trail."
            : null;

    /// <summary>Runs the action on the escrow's grain and audits it, accepted or rejected. The reason must have passed <see cref="ReasonError"/>.</summary>
    public async Task<EscrowResult> OperateAsync(Guid escrowId, OperatorActionKind kind, string? reason, string keyId)
    {
        var result = await grains.GetGrain<IEscrowGrain>(escrowId).OperateAsync(new OperatorAction(kind, reason ?? "", keyId));
        if (result.RejectionCode != "unknown_escrow")
        {
            await store.WriteAuditAsync(new AuditEntry(0, keyId, AuditAction(kind), escrowId, reason, clock.GetUtcNow(), result.Accepted ? "accepted" : $"rejected:{result.RejectionCode}"));
        }
        return result;
    }

    public async Task<CircuitBreakerView> ResetBreakerAsync(string keyId, string? reason)
    {
        var view = await grains.GetGrain<ICircuitBreakerGrain>(0).ResetAsync(keyId);
        await store.WriteAuditAsync(new AuditEntry(0, keyId, ResetBreaker, null, reason, clock.GetUtcNow(), null));
        return view;
    }

    /// <summary>Null when the day is acceptable (today or earlier); otherwise what is wrong with it.</summary>
    public string? DayError(DateOnly day) =>
        day > DateOnly.FromDateTime(clock.GetUtcNow().UtcDateTime) ? "A day in the future cannot be reconciled." : null;

    public DateOnly Yesterday => DateOnly.FromDateTime(clock.GetUtcNow().UtcDateTime).AddDays(-1);

    public async Task<ReconciliationReport> ReconcileAsync(DateOnly day, string keyId)
    {
        var report = await grains.GetGrain<IReconciliationGrain>(0).RunAsync(day, keyId);
        await store.WriteAuditAsync(new AuditEntry(0, keyId, RunReconciliation, null, null, clock.GetUtcNow(), $"{day:yyyy-MM-dd}: {report.Findings.Length} findings"));
        return report;
    }

    /// <summary>False when no alert has this id.</summary>
    public async Task<bool> AcknowledgeAlertAsync(long alertId, string keyId)
    {
        if (!await store.AcknowledgeAlertAsync(alertId, keyId, clock.GetUtcNow()))
        {
            return false;
        }
        await store.WriteAuditAsync(new AuditEntry(0, keyId, AcknowledgeAlert, null, null, clock.GetUtcNow(), $"alert {alertId}"));
        return true;
    }
}
