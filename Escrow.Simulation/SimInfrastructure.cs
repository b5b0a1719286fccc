using System.Collections.Concurrent;
using Escrow.Grains.Email;
using Npgsql;
using Orleans.Storage;

namespace Escrow.Simulation;

/// <summary>
/// Postmark stand-in: records what was sent; a transient failure now and then; a crash right after a send. At each
/// send it checks that the escrow's stored state holds the e-mail's effect (no e-mail before the state that decided
/// it is durable), and that a reply-forwarded e-mail follows a stored reply_accepted.
/// </summary>
public sealed class SimEmailSender : IEmailSender
{
    public SimFaults Faults { get; set; } = null!;

    public SimGrainStorage? Storage { get; set; }

    public IGrainContextAccessor? Contexts { get; set; }

    public ConcurrentQueue<EmailMessage> Sent { get; private set; } = new();

    public ConcurrentQueue<string> Violations { get; private set; } = new();

    public void Reset(SimFaults faults)
    {
        Faults = faults;
        Sent = new();
        Violations = new();
    }

    public Task<string> SendAsync(EmailMessage message, CancellationToken cancellationToken = default)
    {
        if (Faults.Roll(FaultKind.EmailFailed, "email/" + message.To + "/" + message.Tag))
        {
            throw new EmailSendException(transient: true, "injected Postmark failure");
        }
        CheckDurableBefore(message);
        Sent.Enqueue(message);
        var id = Guid.NewGuid().ToString();
        if (message.Metadata is { } meta && meta.TryGetValue("escrow_id", out var escrow))
        {
            SimCrash.AfterEffect(Faults, Contexts, FaultKind.CrashAfterEmail, "crash-email/" + escrow + "/" + message.Tag, "the " + message.Tag + " e-mail");
        }
        return Task.FromResult(id);
    }

    public Task<string?> FindSentAsync(string metadataKey, string metadataValue, CancellationToken cancellationToken = default) =>
        Task.FromResult(Sent.FirstOrDefault(m => m.Metadata is { } meta && meta.TryGetValue(metadataKey, out var v) && v == metadataValue) is { } found
            ? "found:" + found.Tag
            : null);

    private void CheckDurableBefore(EmailMessage message)
    {
        if (Storage is null || message.Metadata is not { } meta || !meta.TryGetValue("escrow_id", out var escrow)
            || !meta.TryGetValue(Escrow.Grains.EscrowEffects.EffectMetadataKey, out var effectKey))
        {
            return;
        }
        var stored = Storage.Get<Escrow.Grains.Domain.EscrowState>("escrow", GrainId.Create(GrainType.Create("escrow"), GrainIdKeyExtensions.CreateGuidKey(Guid.Parse(escrow))));
        var effectId = int.Parse(effectKey[(effectKey.LastIndexOf('/') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        if (stored is null || !stored.Outbox.Any(e => e.Id == effectId))
        {
            Violations.Enqueue($"escrow {escrow}: the {message.Tag} e-mail (effect {effectId}) was sent before the state that decided it was stored");
        }
        if (message.Tag == "reply-forwarded" && (stored is null || !stored.History.Any(h => h.Event == "reply_accepted")))
        {
            Violations.Enqueue($"escrow {escrow}: a reply-forwarded e-mail was sent without a stored reply_accepted");
        }
    }
}

/// <summary>A silo that dies right after an effect was performed, before its result was written.</summary>
public static class SimCrash
{
    /// <summary>Crashes the calling escrow activation (only an escrow's), when the seed says so.</summary>
    public static void AfterEffect(SimFaults faults, IGrainContextAccessor? contexts, FaultKind kind, string site, string what)
    {
        if (contexts?.GrainContext is not { } context || context.GrainId.Type.ToString() != "escrow" || !faults.Roll(kind, site))
        {
            return;
        }
        context.Deactivate(new DeactivationReason(DeactivationReasonCode.ApplicationRequested, "simulated crash"));
        throw new SimulatedCrashException($"simulated crash after {what} of {context.GrainId}");
    }
}

/// <summary>Crashes an escrow activation right after a call it made to another grain (a refund permit, a slot, a payout wait) returned.</summary>
public sealed class SimCrashAfterGrainCall(SimulationCluster sim) : IOutgoingGrainCallFilter
{
    public async Task Invoke(IOutgoingGrainCallContext context)
    {
        await context.Invoke();
        FaultKind? kind = context.MethodName switch
        {
            "RequestPermitAsync" => FaultKind.CrashAfterPermit,
            "ReleaseSlotAsync" => FaultKind.CrashAfterSlotRelease,
            "AwaitPayoutSetupAsync" => FaultKind.CrashAfterPayoutWait,
            _ => null,
        };
        if (kind is { } k && sim.Payments.World is { } world)
        {
            SimCrash.AfterEffect(world.Faults, sim.Payments.Contexts, k, "crash-call/" + context.MethodName + "/" + context.SourceId, context.MethodName);
        }
    }
}

/// <summary>
/// The escrow store (ledger, projection, alerts, email log) of one seed, whose commands fail now and then as a
/// PostgreSQL command would (NpgsqlException). Reads made by the checker go to <see cref="Inner"/> directly.
/// </summary>
public sealed class SimEscrowStore : IEscrowStore
{
    public InMemoryEscrowStore Inner { get; private set; } = null!;

    public SimFaults Faults { get; private set; } = null!;

    public void Reset(SimFaults faults, TimeProvider clock)
    {
        Faults = faults;
        Inner = new InMemoryEscrowStore(clock);
    }

    private void MaybeFail(string site)
    {
        if (Faults.Roll(FaultKind.StoreCommandFailed, site))
        {
            throw new NpgsqlException("injected: the escrow store command failed");
        }
    }

    public Task SyncEscrowAsync(EscrowProjection projection, IReadOnlyList<LedgerEntry> entries, CancellationToken cancellationToken = default)
    {
        MaybeFail("sync/" + projection.EscrowId);
        return Inner.SyncEscrowAsync(projection, entries, cancellationToken);
    }

    public Task<EscrowProjection?> GetEscrowAsync(Guid escrowId, CancellationToken cancellationToken = default) => Inner.GetEscrowAsync(escrowId, cancellationToken);

    public Task<IReadOnlyList<LedgerEntry>> GetLedgerAsync(Guid escrowId, CancellationToken cancellationToken = default) => Inner.GetLedgerAsync(escrowId, cancellationToken);

    public Task<EscrowPage> QueryEscrowsAsync(EscrowQuery query, CancellationToken cancellationToken = default) => Inner.QueryEscrowsAsync(query, cancellationToken);

    public IGrainContextAccessor? Contexts { get; set; }

    public async Task<(AlertRecord Alert, bool Created)> RaiseAlertAsync(NewAlert alert, CancellationToken cancellationToken = default)
    {
        MaybeFail("alert/" + alert.DedupeKey);
        var raised = await Inner.RaiseAlertAsync(alert, cancellationToken);
        SimCrash.AfterEffect(Faults, Contexts, FaultKind.CrashAfterAlert, "crash-alert/" + alert.DedupeKey, "the " + alert.Kind + " alert");
        return raised;
    }

    public Task<IReadOnlyList<AlertRecord>> ListAlertsAsync(bool openOnly, int limit, CancellationToken cancellationToken = default) => Inner.ListAlertsAsync(openOnly, limit, cancellationToken);

    public Task<bool> AcknowledgeAlertAsync(long alertId, string acknowledgedBy, DateTimeOffset at, CancellationToken cancellationToken = default) =>
        Inner.AcknowledgeAlertAsync(alertId, acknowledgedBy, at, cancellationToken);

    public Task<bool> AcknowledgeAlertAsync(long alertId, string acknowledgedBy, DateTimeOffset at, AuditEntry audit, CancellationToken cancellationToken = default) =>
        Inner.AcknowledgeAlertAsync(alertId, acknowledgedBy, at, audit, cancellationToken);

    public Task<WebhookReceipt> RecordWebhookAsync(string provider, string eventId, string eventType, DateTimeOffset receivedAt, CancellationToken cancellationToken = default) =>
        Inner.RecordWebhookAsync(provider, eventId, eventType, receivedAt, cancellationToken);

    public Task<bool> IsWebhookProcessedAsync(string provider, string eventId, CancellationToken cancellationToken = default) =>
        Inner.IsWebhookProcessedAsync(provider, eventId, cancellationToken);

    public Task RecordProcessedWebhookAsync(string provider, string eventId, string eventType, DateTimeOffset receivedAt, string outcome, DateTimeOffset processedAt, CancellationToken cancellationToken = default) =>
        Inner.RecordProcessedWebhookAsync(provider, eventId, eventType, receivedAt, outcome, processedAt, cancellationToken);

    public Task MarkWebhookProcessedAsync(string provider, string eventId, string outcome, DateTimeOffset processedAt, CancellationToken cancellationToken = default) =>
        Inner.MarkWebhookProcessedAsync(provider, eventId, outcome, processedAt, cancellationToken);

    public Task LogEmailAsync(EmailLogEntry entry, CancellationToken cancellationToken = default)
    {
        MaybeFail("email-log/" + entry.EscrowId + "/" + entry.Kind);
        return Inner.LogEmailAsync(entry, cancellationToken);
    }

    public Task<IReadOnlyList<EmailLogEntry>> GetEmailLogAsync(Guid escrowId, CancellationToken cancellationToken = default) => Inner.GetEmailLogAsync(escrowId, cancellationToken);

    public Task<EmailLogEntry?> FindSentEmailAsync(string? providerMessageId, string? toAddress, CancellationToken cancellationToken = default) =>
        Inner.FindSentEmailAsync(providerMessageId, toAddress, cancellationToken);

    public Task RecordInboundMessageAsync(InboundMessageRecord message, CancellationToken cancellationToken = default) => Inner.RecordInboundMessageAsync(message, cancellationToken);

    public Task<DateTimeOffset> RecordInboundReceiptAsync(InboundMessageRecord message, CancellationToken cancellationToken = default) => Inner.RecordInboundReceiptAsync(message, cancellationToken);

    public Task<IReadOnlyList<InboundMessageRecord>> GetInboundMessagesAsync(Guid escrowId, CancellationToken cancellationToken = default) => Inner.GetInboundMessagesAsync(escrowId, cancellationToken);

    public Task WriteAuditAsync(AuditEntry entry, CancellationToken cancellationToken = default) => Inner.WriteAuditAsync(entry, cancellationToken);

    public Task<IReadOnlyList<AuditEntry>> GetAuditAsync(Guid? escrowId, int limit, CancellationToken cancellationToken = default) => Inner.GetAuditAsync(escrowId, limit, cancellationToken);

    public Task<IReadOnlyList<AuditEntry>> QueryAuditAsync(AuditQuery query, CancellationToken cancellationToken = default) => Inner.QueryAuditAsync(query, cancellationToken);

    public Task<IReadOnlyList<StatusCount>> CountByStatusAsync(CancellationToken cancellationToken = default) => Inner.CountByStatusAsync(cancellationToken);

    public Task<IReadOnlyList<EscrowProjection>> GetEscrowsTouchedAsync(DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken cancellationToken = default) =>
        Inner.GetEscrowsTouchedAsync(from, to, limit, cancellationToken);

    public Task SaveReconciliationReportAsync(DateOnly date, string reportJson, CancellationToken cancellationToken = default) =>
        Inner.SaveReconciliationReportAsync(date, reportJson, cancellationToken);

    public Task<string?> GetReconciliationReportAsync(DateOnly date, CancellationToken cancellationToken = default) =>
        Inner.GetReconciliationReportAsync(date, cancellationToken);

    public Task<IReadOnlyList<HourlyLifecycleCount>> CountLifecyclesPerHourAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default) =>
        Inner.CountLifecyclesPerHourAsync(from, to, cancellationToken);

    public Task<bool> PingAsync(CancellationToken cancellationToken = default) => Task.FromResult(true);
}

/// <summary>
/// Grain storage with the ETag rule of the ADO.NET provider, whose writes fail now and then: before anything is
/// written (the command failed), or after (the row was written but the answer was lost, so the activation's ETag is
/// stale and its next write is refused with InconsistentStateException). States are immutable records that grains
/// replace, never mutate, so the stored reference is a faithful copy.
/// </summary>
public sealed class SimGrainStorage : IGrainStorage
{
    private readonly ConcurrentDictionary<string, (object State, string ETag)> _rows = new(StringComparer.Ordinal);
    private long _etag;

    public SimFaults Faults { get; set; } = null!;

    /// <summary>Told every window start the breaker stores (a row written counts, even if its answer is then lost).</summary>
    public BreakerLedger? Breaker { get; set; }

    public void Clear() => _rows.Clear();

    public T? Get<T>(string stateName, GrainId grainId) where T : class =>
        _rows.TryGetValue(Key(stateName, grainId), out var row) ? row.State as T : null;

    private static string Key(string stateName, GrainId grainId) => stateName + "/" + grainId;

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        if (_rows.TryGetValue(Key(stateName, grainId), out var row))
        {
            grainState.State = (T)row.State;
            grainState.ETag = row.ETag;
            grainState.RecordExists = true;
        }
        return Task.CompletedTask;
    }

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var key = Key(stateName, grainId);
        var site = "write/" + key;
        if (Faults.Roll(FaultKind.StorageWriteFailed, site))
        {
            throw new NpgsqlException("injected: the grain state write failed");
        }
        var etag = Interlocked.Increment(ref _etag).ToString(System.Globalization.CultureInfo.InvariantCulture);
        lock (_rows)
        {
            var stored = _rows.TryGetValue(key, out var row) ? row.ETag : null;
            if (stored != grainState.ETag)
            {
                throw new InconsistentStateException($"ETag mismatch on {key}", stored, grainState.ETag);
            }
            _rows[key] = (grainState.State!, etag);
        }
        if (grainState.State is Escrow.Grains.CircuitBreakerState { WindowStartedAt: { } start })
        {
            Breaker?.WindowStored(start);
        }
        if (Faults.Roll(FaultKind.StorageWriteLost, site))
        {
            throw new NpgsqlException("injected: the grain state was written but the answer was lost");
        }
        grainState.ETag = etag;
        grainState.RecordExists = true;
        return Task.CompletedTask;
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        _rows.TryRemove(Key(stateName, grainId), out _);
        grainState.ETag = null;
        grainState.RecordExists = false;
        return Task.CompletedTask;
    }
}
