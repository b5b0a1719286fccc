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
public sealed partial class AdminOperations(IGrainFactory grains, IEscrowStore store, TimeProvider clock, ILogger<AdminOperations> logger,
    Escrow.Grains.PersonalDataEraser eraser)
{
    public const string ErasePersonalData = "privacy.erase";
    public const string DeleteRecipient = "recipient.delete";

    /// <summary>
    /// Erases a sender's data everywhere, or refuses (nothing erased) while one of their escrows is open. Audited
    /// either way, without the address: the audit row names the escrows and the rows changed.
    /// </summary>
    public async Task<Escrow.Grains.ErasureOutcome> EraseAsync(string email, string keyId)
    {
        var outcome = await eraser.EraseSenderAsync(email);
        await WriteAfterChangeAsync(new AuditEntry(0, keyId, ErasePersonalData, null, null, clock.GetUtcNow(), Describe(outcome)));
        return outcome;
    }

    /// <summary>Deletes a recipient and erases their data, or refuses while one of their escrows is open. Null: no such recipient.</summary>
    public async Task<Escrow.Grains.ErasureOutcome?> DeleteRecipientAsync(string recipientId, string keyId)
    {
        var outcome = await eraser.DeleteRecipientAsync(recipientId);
        if (outcome is not null)
        {
            await WriteAfterChangeAsync(new AuditEntry(0, keyId, DeleteRecipient, null, null, clock.GetUtcNow(), Describe(outcome), recipientId));
        }
        return outcome;
    }

    private static string Describe(Escrow.Grains.ErasureOutcome o) => o.Refused
        ? $"refused: {o.Open.Count} escrows open ({string.Join(", ", o.Open.Take(20))})"
        : $"erased: {o.Erased.Count} escrows ({string.Join(", ", o.Erased.Take(20))}); {o.Rows}";

    public const int ReasonLengthMax = 1000;
    public const string ResetBreaker = AuditActions.ResetBreaker;
    public const string RunReconciliation = AuditActions.RunReconciliation;
    public const string AcknowledgeAlert = AuditActions.AcknowledgeAlert;

    /// <summary>How often an audit row written after its change is tried before the call fails (the change stands).</summary>
    private const int AuditWriteAttemptsMax = 5;

    public static string AuditAction(OperatorActionKind kind) => AuditActions.Operator(kind);

    /// <summary>Null when the reason is acceptable for this action; otherwise what is wrong with it.</summary>
    public static string? ReasonError(OperatorActionKind kind, string? reason) =>
        reason is { Length: > ReasonLengthMax } || (kind is OperatorActionKind.Refund or OperatorActionKind.Release && string.IsNullOrWhiteSpace(reason))
            ? $"A reason (1 to {ReasonLengthMax} characters) is required for a release or a refund; it goes to the audit trail."
            : null;

    /// <summary>
    /// Runs the action on the escrow's grain. An accepted action's audit row is written by the escrow from the same state
    /// write as the change; a refused one changed nothing, and its row is written here.
    /// </summary>
    public async Task<EscrowResult> OperateAsync(Guid escrowId, OperatorActionKind kind, string? reason, string keyId)
    {
        var result = await grains.GetGrain<IEscrowGrain>(escrowId).OperateAsync(new OperatorAction(kind, reason ?? "", keyId));
        if (!result.Accepted && result.Rejection != Rejection.UnknownEscrow)
        {
            await store.WriteAuditAsync(new AuditEntry(0, keyId, AuditAction(kind), escrowId, reason, clock.GetUtcNow(), $"rejected:{result.Rejection!.Code}", result.View?.RecipientId));
        }
        return result;
    }

    public async Task<CircuitBreakerView> ResetBreakerAsync(string keyId, string? reason)
    {
        var view = await grains.GetGrain<ICircuitBreakerGrain>(0).ResetAsync(keyId);
        await WriteAfterChangeAsync(new AuditEntry(0, keyId, ResetBreaker, null, reason, clock.GetUtcNow(), null));
        return view;
    }

    /// <summary>Null when the day is acceptable (today or earlier); otherwise what is wrong with it.</summary>
    public string? DayError(DateOnly day) =>
        day > DateOnly.FromDateTime(clock.GetUtcNow().UtcDateTime) ? "A day in the future cannot be reconciled." : null;

    public DateOnly Yesterday => DateOnly.FromDateTime(clock.GetUtcNow().UtcDateTime).AddDays(-1);

    public async Task<ReconciliationReport> ReconcileAsync(DateOnly day, string keyId)
    {
        var report = await grains.GetGrain<IReconciliationGrain>(0).RunAsync(day, keyId);
        await WriteAfterChangeAsync(new AuditEntry(0, keyId, RunReconciliation, null, null, clock.GetUtcNow(), $"{day:yyyy-MM-dd}: {report.Findings.Length} findings"));
        return report;
    }

    /// <summary>False when no alert has this id. The acknowledgement and its audit row are one transaction.</summary>
    public Task<bool> AcknowledgeAlertAsync(long alertId, string keyId)
    {
        var now = clock.GetUtcNow();
        return store.AcknowledgeAlertAsync(alertId, keyId, now, new AuditEntry(0, keyId, AcknowledgeAlert, null, null, now, $"alert {alertId}"));
    }

    /// <summary>
    /// The row of a change made in a grain that keeps no audit outbox (breaker reset, reconciliation run: neither moves
    /// money): tried again with backoff, and a call whose row could not be written fails so the operator repeats it.
    /// </summary>
    private async Task WriteAfterChangeAsync(AuditEntry entry)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await store.WriteAuditAsync(entry);
                return;
            }
            catch (Exception e) when (attempt < AuditWriteAttemptsMax && e is not OperationCanceledException)
            {
                LogAuditRetry(e, entry.Action, attempt);
                await Task.Delay(TimeSpan.FromMilliseconds(100 * (1 << attempt)));
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The audit row of {Action} could not be written (attempt {Attempt}); retrying")]
    private partial void LogAuditRetry(Exception e, string action, int attempt);
}
