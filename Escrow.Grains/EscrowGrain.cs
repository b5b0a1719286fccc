using System.Collections.Immutable;
using System.Security.Cryptography;
using Escrow.Grains.Domain;
using Escrow.Grains.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Core;
using Orleans.Storage;

namespace Escrow.Grains;

/// <summary>
/// One escrow. Load, decide with the pure machine, write the new status and its outbox in one WriteStateAsync,
/// then perform the effects. Orleans runs one call at a time per activation, so two releases cannot interleave;
/// the state's ETag fences a stale duplicate activation before it can call Stripe.
/// </summary>
/// <remarks>
/// The state is read by the first call that needs it, not at activation: a new escrow's create writes its first state
/// without reading (an id that is not new fails that insert on the state's unique key, and is then read).
/// </remarks>
[GrainType("escrow")]
public sealed partial class EscrowGrain(
    [FromKeyedServices(EscrowStorage.ProviderName)] IGrainStorage storage,
    TimeProvider clock,
    EscrowEffects effects,
    EscrowTokens tokens,
    IEscrowStore store,
    IOptions<EscrowOptions> options,
    ILogger<EscrowGrain> logger) : Grain, IEscrowGrain, IRemindable
{
    private const string ReminderName = "escrow";
    // The state's name in storage, as [PersistentState("escrow")] named it: rows written before stay readable.
    private const string StateName = "escrow";
    private const int OutboxPassesMax = 64;

    private readonly EscrowMachine _machine = effects.Machine;
    private int _syncedVersion = -1;
    private int _syncedOutboxSeq = -1;
    private bool _dirty;
    private EscrowState _durable = new();
    // The ids of the effects in the stored outbox: decided by a durable state, so they may run.
    private HashSet<int> _durableEffects = [];
    // When the reminder this activation registered first fires (then it ticks every period until moved or removed).
    private DateTimeOffset? _reminderDue;
    private bool _reminderKnown;
    // The handle this activation last registered (its ETag), so removing the reminder needs no read first.
    private IGrainReminder? _reminder;
    private int _firstEffectIdOfActivation;
    private StateStorageBridge<EscrowState> state = null!;
    // Whether this activation has read its stored state (or written it, which is as good).
    private bool _loaded;
    private bool _storedUnknown;
    private long _writes;

    private Guid Id => this.GetPrimaryKey();

    private DateTimeOffset Now => clock.GetUtcNow();

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        state = new StateStorageBridge<EscrowState>(StateName, GrainContext, storage);
        state.State = new EscrowState();
        return Task.CompletedTask;
    }

    public async Task<EscrowResult> CreateAsync(CreateEscrow request)
    {
        var unread = !_loaded && !_storedUnknown;
        if (!unread)
        {
            await LoadAsync();
            if (state.State.Exists)
            {
                return await CreatedAlreadyAsync(request);
            }
        }
        // The reminder a new escrow's first write needs (EnsureReminderAsync: its payment is due now, so the backstop one
        // period from now) does not depend on the slot: both commits run at once instead of one after the other.
        var earlyReminder = unread ? RegisterReminderAsync(options.Value.ReminderPeriod) : Task.CompletedTask;
        // Admitted by both caps at once: the recipient's (daily limit, unpaid escrows) and the sender's (unpaid escrows).
        var recipient = GrainFactory.GetGrain<IRecipientGrain>(request.RecipientId);
        var sender = GrainFactory.GetGrain<IClientGuardGrain>(ClientGuardKeys.Sender(request.SenderEmail));
        var reserving = recipient.ReserveAsync(Id, request.ResponseWindow);
        var holding = sender.HoldUnpaidAsync(Id, Now + options.Value.UnpaidExpiry);
        await Task.WhenAll(earlyReminder, reserving, holding);
        var reservation = await reserving;
        var hold = await holding;
        if (!reservation.Reserved || !hold.Allowed)
        {
            // Whichever cap admitted this create gives its place back.
            if (reservation.New)
            {
                await recipient.ReleaseSlotAsync(Id);
            }
            if (hold.New)
            {
                await sender.ReleaseUnpaidAsync(Id);
            }
            // A refused slot (today's limit) must not hide an escrow this id already has: the retry gets that escrow.
            await LoadAsync();
            if (state.State.Exists)
            {
                return await CreatedAlreadyAsync(request);
            }
            if (unread)
            {
                // Nothing was created: the reminder registered for it goes (a tick would find nothing and remove it anyway).
                await ScheduleAsync();
            }
            return new EscrowResult(null, reservation.Reserved ? hold.Rejection : reservation.Rejection);
        }
        var o = options.Value;
        var now = Now;
        var issued = tokens.Issue(Id, now);
        var created = EscrowMachine.Create(new NewEscrow(
            Id, request.RecipientId, request.SenderEmail, request.Subject, request.Message,
            new Money(reservation.AmountMinor, Currency.Parse(reservation.Currency)), reservation.RevenueShareBps,
            request.ResponseWindow, o.ReplyGrace, o.UnpaidExpiry, request.RequestHash,
            issued.ReplyTokenHash, issued.AccessTokenHash, issued.KeyId,
            request.PaymentMethodId), now);
        try
        {
            await SaveAsync(created);
        }
        catch (InconsistentStateException) when (!_loaded)
        {
            // The insert found a stored escrow under this id (a retry after the first activation went, or a duplicate
            // activation): nothing of this attempt was written. A place taken just now for it is given back.
            if (reservation.New)
            {
                await recipient.ReleaseSlotAsync(Id);
            }
            if (hold.New)
            {
                await sender.ReleaseUnpaidAsync(Id);
            }
            await LoadAsync();
            return await CreatedAlreadyAsync(request);
        }
        LogCreated(Id, request.RecipientId, reservation.AmountMinor, reservation.Currency);
        EscrowTelemetry.EscrowsCreated.Add(1);
        await RunAsync(deferEmails: true);
        return Created();
    }

    /// <summary>The create of an escrow that exists: the same request gets it (its work driven on), another is refused.</summary>
    private async Task<EscrowResult> CreatedAlreadyAsync(CreateEscrow request)
    {
        if (!CryptographicOperations.FixedTimeEquals(Convert.FromHexString(state.State.RequestHash), Convert.FromHexString(request.RequestHash)))
        {
            return Rejected(Rejection.IdempotencyKeyReused);
        }
        // The same create with another card: after a decline, the machine retries the payment with it.
        if (request.PaymentMethodId is { } card && _machine.Decide(state.State, new RetryPayment(card), Now) is { Accepted: true } retry)
        {
            Stage(retry.State);
        }
        await RunAsync(deferEmails: true);
        return Created();
    }

    /// <summary>The last durable state: a decision still being performed is not reported before it is written.</summary>
    public async Task<EscrowView?> GetAsync()
    {
        await LoadAsync();
        return _durable.Exists ? EscrowViews.From(_durable) : null;
    }

    public async Task<ReplyContext?> GetReplyContextAsync()
    {
        await LoadAsync();
        var s = state.State;
        return s.Exists ? new ReplyContext(s.Id, s.ReplyTokenDigest, s.RecipientId, s.Status.ToWire(), s.Deadline, s.ReplyDeadline) : null;
    }

    public Task<EscrowResult> AcceptReplyAsync(ReplyReceived reply) =>
        DecideAndRunAsync(new AcceptReply(reply.ReceivedAt, reply.Source, reply.ReplyText),
            audit: reply.KeyId is { } keyId ? new AuditRequest(keyId, AuditActions.Reply, null) : null);

    /// <summary>
    /// A Stripe event. With its id, an event already applied is recognised (the state keeps the last ones applied;
    /// an event whose change is not there yet is looked up in the webhook inbox first, which records what was applied
    /// before the state kept them); an event that changes nothing needs no look-up.
    /// </summary>
    public async Task<EscrowResult> HandlePaymentEventAsync(PaymentEvent e)
    {
        await LoadAsync();
        if (e.EventId is { } applied && state.State.HasApplied(applied))
        {
            return Rejected(Rejection.DuplicateEvent);
        }
        EscrowCommand command = e.Kind switch
        {
            PaymentEventKind.Authorised => new PaymentAuthorised(e.ObjectId, e.AmountMinor, e.Currency ?? ""),
            PaymentEventKind.Failed => new PaymentFailed(e.Reason ?? "payment_failed", PaymentIntentId: e.ObjectId),
            PaymentEventKind.Voided => new AuthorisationVoided(e.Reason ?? "canceled", e.ObjectId),
            PaymentEventKind.DisputeOpened => new DisputeOpened(e.ObjectId),
            PaymentEventKind.TransferReversed => new TransferReversed(e.ObjectId, e.AmountMinor),
            PaymentEventKind.DisputeClosed => new DisputeClosed(e.ObjectId, Won: e.Reason == "won"),
            PaymentEventKind.TransferCreated => new TransferReported(e.ObjectId, e.AmountMinor, e.Currency ?? "", e.DestinationAccountId ?? "", await RecipientAccountAsync()),
            _ => throw new ArgumentOutOfRangeException(nameof(e), e.Kind, null),
        };
        return await DecideAndRunAsync(command, e.EventId);
    }

    /// <summary>The recipient's Stripe account as the recipient grain knows it (it never waits on an escrow, so this cannot deadlock).</summary>
    private async Task<string?> RecipientAccountAsync() =>
        state.State.Exists ? (await GrainFactory.GetGrain<IRecipientGrain>(state.State.RecipientId).GetAsync())?.StripeAccountId : null;

    /// <summary>One-way from the recipient, which does not wait for us: the transfer's call back to it cannot deadlock.</summary>
    public async Task RecipientPayoutsEnabledAsync() => await DecideAndRunAsync(new RecipientPayoutsEnabled());

    public Task<EscrowResult> OperateAsync(OperatorAction action) =>
        DecideAndRunAsync(ToCommand(action), audit: new AuditRequest(action.KeyId, AuditActions.Operator(action.Kind), string.IsNullOrEmpty(action.Reason) ? null : action.Reason));

    public Task<EscrowResult> ErasePersonalDataAsync(bool bodiesOnly) => DecideAndRunAsync(new ErasePersonalData(bodiesOnly));

    public Task<EscrowResult> RefuseReplyAsync(RefusedReply reply) => DecideAndRunAsync(new ReplyRefused(reply.Reason, reply.MessageId, reply.Why));

    public Task<EscrowResult> EmailBouncedAsync(BouncedEmail bounce) =>
        DecideAndRunAsync(new EmailBounced(Email.EmailComposer.KindOf(bounce.Tag), bounce.To, bounce.Error));

    /// <summary>Asks the machine, without running anything, which operator commands it would accept now.</summary>
    public async Task<ImmutableArray<OperatorActionKind>> GetOperatorActionsAsync()
    {
        await LoadAsync();
        return state.State.Exists
            ? [.. Enum.GetValues<OperatorActionKind>().Where(k => _machine.Decide(state.State, ToCommand(new OperatorAction(k, "probe", "probe")), Now).Accepted)]
            : [];
    }

    private static EscrowCommand ToCommand(OperatorAction action) => action.Kind switch
    {
        OperatorActionKind.Release => new OperatorRelease(action.Reason),
        OperatorActionKind.Refund => new OperatorRefund(action.Reason),
        OperatorActionKind.RetryTransfer => new OperatorRetryTransfer(),
        OperatorActionKind.ApproveRefund => new OperatorApproveRefund(),
        OperatorActionKind.ResolveDispute => new OperatorResolveDispute(action.Reason),
        _ => throw new ArgumentOutOfRangeException(nameof(action), action.Kind, null),
    };

    public Task ReceiveReminder(string reminderName, TickStatus status)
    {
        _reminderKnown = true;
        return WakeAsync();
    }

    public Task DriveAsync() => WakeAsync();

    public async Task WakeAsync()
    {
        await LoadAsync();
        if (!state.State.Exists)
        {
            await ScheduleAsync();
            return;
        }
        // The clock decides, not the tick: a tick can come early, twice, or not at all.
        foreach (var due in EscrowMachine.DueCommands(state.State, Now))
        {
            var decision = _machine.Decide(state.State, due, Now);
            if (decision.Accepted)
            {
                Stage(decision.State);
            }
        }
        await RunAsync();
    }

    /// <param name="stripeEventId">The Stripe event that asks for this change, if one does: kept with the change.</param>
    /// <param name="audit">Who asked with a key: an accepted change carries its audit row in the same write.</param>
    private async Task<EscrowResult> DecideAndRunAsync(EscrowCommand command, string? stripeEventId = null, AuditRequest? audit = null)
    {
        await LoadAsync();
        var decision = _machine.Decide(state.State, command, Now);
        if (!decision.Accepted)
        {
            LogRejected(Id, command.Name, decision.Rejection!.Code);
            if (EscrowMachine.AlertOnRefusal(state.State, command, decision.Rejection!) is { } alert
                && _machine.Decide(state.State, alert, Now) is { Accepted: true } alerted)
            {
                // The refusal changes nothing; the alert it calls for is the escrow's own, written and raised like any other.
                Stage(alerted.State);
                await RunAsync();
            }
            return Rejected(decision.Rejection!);
        }
        if (stripeEventId is not null && await store.IsWebhookProcessedAsync(WebhookProviders.Stripe, stripeEventId))
        {
            return Rejected(Rejection.DuplicateEvent);
        }
        var next = stripeEventId is null ? decision.State : decision.State.WithApplied(stripeEventId);
        Stage(audit is null ? next : EscrowAudit.Add(next, audit, Now));
        var writesBefore = _writes;
        try
        {
            await RunAsync();
        }
        catch (Exception e) when (_writes > writesBefore && TransientFailure.Is(e))
        {
            // The decision is durable (a write after it succeeded) and the work it started is re-driven from the
            // stored outbox by the reminder: the request was accepted, so it is answered as accepted rather than with
            // an error whose retry would find the decision made and be refused (a reply's retry: already_replied).
            LogFailedAfterDecision(e, Id, command.Name);
            return new EscrowResult(EscrowViews.From(_durable), null);
        }
        return Ok();
    }

    /// <summary>
    /// Performs the outbox in order, deciding each result as it comes. The state is written before any effect whose
    /// deciding state is not yet durable (every decision staged until then shares that one write), and once at the
    /// end of the run if anything changed that must be written (a sent e-mail the log records, of an escrow that
    /// still has a due time, waits for the next write). A crash re-drives from the last written state, and every
    /// effect is idempotent (deterministic Stripe keys; e-mails checked in the log and, when unsure, at Postmark).
    /// </summary>
    /// <param name="deferEmails">
    /// The caller waits only for the decision and its money movement to be durable (a new escrow's hold): e-mails
    /// the e-mail log records, the ledger and the reminder's move are left to a message this grain sends itself,
    /// handled right after the answer.
    /// </param>
    private async Task RunAsync(bool deferEmails = false)
    {
        var deferred = false;
        try
        {
            for (var pass = 0; pass < OutboxPassesMax; pass++)
            {
                var now = Now;
                bool Runnable(PendingEffect e) => (e.NotBefore is null || e.NotBefore <= now) && Disputes.MayRun(state.State, e);
                var effect = state.State.Outbox.FirstOrDefault(e => Runnable(e) && !(deferEmails && EscrowEffects.IsLoggedEmail(e)));
                if (effect is null)
                {
                    deferred = deferEmails && state.State.Outbox.Any(e => Runnable(e) && EscrowEffects.IsLoggedEmail(e));
                    break;
                }
                // The one rule for every effect, e-mails included: it runs only once the state that decided it is
                // durable. An effect that is in the stored outbox was decided by a written state; one that is not was
                // decided in memory, and the write (of every decision staged so far, in one WriteStateAsync) comes
                // first. So a crash can lose a decision only together with everything it would have done, and a stale
                // duplicate activation fails its write before it reaches Stripe or Postmark. The recipient reads our
                // durable state to know whether we still wait for payouts: it must see the latest.
                if (!_durableEffects.Contains(effect.Id) || effect.Kind == EffectKind.AwaitPayoutSetup)
                {
                    await FlushAsync();
                }
                var outcome = await effects.PerformAsync(state.State, effect, now, mayHaveRunBefore: effect.Id < _firstEffectIdOfActivation || effect.Attempts > 0);
                foreach (var finding in outcome.Findings.IsDefault ? [] : outcome.Findings)
                {
                    if (_machine.Decide(state.State, finding, Now) is { Accepted: true } alerted)
                    {
                        Stage(alerted.State);
                    }
                }
                var command = outcome.Command;
                var next = _machine.Decide(state.State, command, Now);
                if (outcome.RecordedOutside && next.Accepted && EscrowMachine.NextDueAt(next.State) is not null)
                {
                    // Done and durable elsewhere (the e-mail log, the slot's grains, the audit log), and the escrow still
                    // has a due time (so it keeps a reminder and will be written again): the completion rides on that
                    // next write. A re-drive before it finds the work done and does not repeat it. A terminal escrow's
                    // completion is written now.
                    StageUnwritten(next.State);
                    continue;
                }
                if (!next.Accepted && command is not EffectFailed)
                {
                    // A result the machine refused: the effect is tried again later, like a failed one.
                    command = new EffectFailed(effect.Id, next.Rejection!.Code, Permanent: false);
                    next = _machine.Decide(state.State, command, Now);
                }
                if (!next.Accepted)
                {
                    // The effect is in the outbox, so the machine decides its failure: this is a bug, not an outcome.
                    throw new EscrowInvariantException(Id, $"the failure of effect {effect.Id} was refused: {next.Rejection!.Code}");
                }
                if (command is EffectFailed { Permanent: false })
                {
                    EscrowTelemetry.EffectRetries.Add(1, new KeyValuePair<string, object?>("effect", effect.Kind.ToString()));
                }
                Stage(next.State);
            }
        }
        finally
        {
            await FlushAsync();
        }
        if (deferred)
        {
            // One-way and queued behind this call: it runs the rest as soon as the answer is sent. Lost with the
            // activation, it is the reminder ensured before the write that comes back for the e-mails.
            this.AsReference<IEscrowGrain>().DriveAsync().Ignore();
            return;
        }
        await SyncAsync();
        try
        {
            await ScheduleAsync();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The decision is durable and a reminder early enough for its work was ensured before the write; this
            // only moves that reminder to the exact due time, so it must not turn an accepted request into an error.
            LogScheduleFailed(e, Id);
        }
    }

    private static HashSet<int> DurableEffects(EscrowState s) => [.. s.Outbox.Select(e => e.Id)];

    /// <summary>
    /// Reads the stored state on the first call that needs it, and again after a failed flush, when what is stored is
    /// unknown: the activation asked to go, but a call may still reach it first, and it must not trust memory, which may
    /// be older than what was stored (the write's answer was lost) or hold a decision that was never stored.
    /// </summary>
    private async Task LoadAsync()
    {
        if (_loaded && !_storedUnknown)
        {
            return;
        }
        var first = !_loaded && !_storedUnknown;
        await state.ReadStateAsync();
        EscrowInvariants.Check(state.State);
        _dirty = false;
        _durable = state.State;
        _durableEffects = DurableEffects(state.State);
        if (first)
        {
            // Effects numbered from here on are created by this activation; those below may have run in an earlier one.
            _firstEffectIdOfActivation = state.State.NextEffectId;
            if (state.State.Exists)
            {
                // An activation checks its due times when it wakes up: a reminder tick can be lost. The message to
                // itself runs right after the call that woke it.
                this.AsReference<IEscrowGrain>().DriveAsync().Ignore();
            }
        }
        else
        {
            // Effects performed before the failure may be in the stored outbox or be decided again with the same ids:
            // from now on every effect counts as possibly done (the email log is checked before any one-time email).
            _firstEffectIdOfActivation = int.MaxValue;
            _syncedVersion = -1;
            _syncedOutboxSeq = -1;
            _reminderDue = null;
            _reminderKnown = false;
            _reminder = null;
        }
        _loaded = true;
        _storedUnknown = false;
    }

    /// <summary>Writes now: used where a caller must know the decision is durable before it goes on.</summary>
    private async Task SaveAsync(EscrowState next)
    {
        Stage(next);
        await FlushAsync();
    }

    /// <summary>
    /// Applies a change that needs no write of its own (a completion recorded outside, <see cref="EffectOutcome.RecordedOutside"/>): it is
    /// in the state the next <see cref="FlushAsync"/> writes, but does not cause one.
    /// </summary>
    private void StageUnwritten(EscrowState next)
    {
        next = EffectAge.Stamp(next, Now);
        EscrowInvariants.Check(next);
        state.State = next;
    }

    /// <summary>Applies a decided state in memory; <see cref="FlushAsync"/> makes it durable.</summary>
    private void Stage(EscrowState next)
    {
        next = EffectAge.Stamp(next, Now);
        EscrowInvariants.Check(next);
        var before = state.State;
        state.State = next;
        _dirty = true;
        if (before.Status != next.Status)
        {
            LogStatus(Id, before.Status.ToWire(), next.Status.ToWire());
            EscrowTelemetry.StatusChanges.Add(1, new KeyValuePair<string, object?>("status", next.Status.ToWire()));
            switch (next.Status)
            {
                case EscrowStatus.Released:
                    EscrowTelemetry.Released.Add(1);
                    break;
                case EscrowStatus.Refunded:
                    EscrowTelemetry.Refunded.Add(1);
                    break;
                case EscrowStatus.TransferFailed:
                    EscrowTelemetry.TransferFailures.Add(1);
                    break;
            }
        }
    }

    private async Task FlushAsync()
    {
        if (!_dirty)
        {
            return;
        }
        var next = state.State;
        // The reminder that re-drives a crash must exist before the state that needs it is written: otherwise a
        // process that dies (or a write whose answer is lost) between the write and ScheduleAsync leaves work
        // that nothing will ever come back for.
        try
        {
            await EnsureReminderAsync(next);
            await state.WriteStateAsync();
        }
        catch (InconsistentStateException) when (!_loaded)
        {
            // The first insert of an activation that has not read found a stored escrow: nothing was written, and the
            // next call reads what is stored (the create that tried it does so at once).
            _dirty = false;
            throw;
        }
        catch
        {
            // Not written, or written with the answer lost: what is stored is unknown. Memory is not trusted any more
            // (no later call is answered from a decision that may not be durable); the activation goes, and whatever
            // call reaches it first reads the stored state again.
            _dirty = false;
            _storedUnknown = true;
            DeactivateOnIdle();
            throw;
        }
        _dirty = false;
        _loaded = true;
        _writes++;
        _durable = next;
        _durableEffects = DurableEffects(next);
    }

    /// <summary>
    /// The projection or the ledger lags the state: new history, or an outbox change the stuck-escrow monitor counts
    /// (an effect completed or added without a history entry).
    /// </summary>
    private bool Unsynced(EscrowState s) => s.History.Length != _syncedVersion || EffectAge.Seq(s) != _syncedOutboxSeq;

    /// <summary>Writes the ledger rows and the projection. Idempotent; a failure is retried on the next write or tick.</summary>
    private async Task SyncAsync()
    {
        var s = state.State;
        if (!s.Exists || !Unsynced(s))
        {
            return;
        }
        try
        {
            await store.SyncEscrowAsync(EscrowViews.Projection(s), EscrowViews.Ledger(s, _syncedVersion < 0 ? 0 : _syncedVersion));
            _syncedVersion = s.History.Length;
            _syncedOutboxSeq = EffectAge.Seq(s);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogSyncFailed(e, Id);
        }
    }

    /// <summary>
    /// Keeps one reminder while the escrow has work left (a due time, an effect, an unsynced ledger row), and
    /// removes it only after the outbox is empty and the ledger is written, so a crash re-drives what is left.
    /// </summary>
    private async Task ScheduleAsync()
    {
        var s = state.State;
        var next = EscrowMachine.NextDueAt(s);
        if (next is null && s.Exists && Unsynced(s))
        {
            next = Now + options.Value.ReminderPeriod;
        }
        if (next is null)
        {
            if (_reminderKnown || _reminderDue is not null || !s.Exists || s.IsTerminal)
            {
                await RemoveReminderAsync();
                _reminderKnown = false;
                _reminderDue = null;
            }
            return;
        }
        // A registered reminder that has not fired yet and comes no later than the next due time is kept: moving it
        // later would cost a commit on the caller's path (the hold of every new escrow moved its reminder from the
        // backstop to the first deadline warning). If it fires early, the tick finds nothing due and moves it then;
        // an escrow whose work is done before it fires (a quick reply) never moves it at all.
        if (_reminderDue is { } registered && registered <= next && registered > Now)
        {
            return;
        }
        var dueTime = next.Value - Now;
        if (dueTime < TimeSpan.Zero)
        {
            dueTime = TimeSpan.Zero;
        }
        await RegisterReminderAsync(dueTime);
    }

    /// <summary>Registers (or moves) the escrow's reminder to fire after <paramref name="dueTime"/>, then every period.</summary>
    private async Task RegisterReminderAsync(TimeSpan dueTime)
    {
        if (options.Value.MaxReminderDueTime is { } cap && dueTime > cap)
        {
            dueTime = cap;
        }
        var firesAt = Now + dueTime;
        _reminder = await this.RegisterOrUpdateReminder(ReminderName, dueTime, options.Value.ReminderPeriod);
        // When it first fires (capped or not): what "comes no later than" is compared with.
        _reminderDue = firesAt;
        _reminderKnown = true;
    }

    /// <summary>
    /// Removes the reminder with the handle this activation registered (no read); without one, or when the handle's
    /// version is no longer the stored one (another activation moved it), reads the stored row and removes that.
    /// </summary>
    private async Task RemoveReminderAsync()
    {
        var handle = _reminder;
        _reminder = null;
        if (handle is not null)
        {
            try
            {
                await this.UnregisterReminder(handle);
                return;
            }
            catch (ReminderException)
            {
                // Version mismatch: the stored reminder is not the one this activation registered.
            }
        }
        if (await this.GetReminder(ReminderName) is { } stored)
        {
            await this.UnregisterReminder(stored);
        }
    }

    /// <summary>Registers the reminder early enough for the work in <paramref name="next"/>, unless one already comes by then.</summary>
    private async Task EnsureReminderAsync(EscrowState next)
    {
        if (!next.Exists)
        {
            return;
        }
        // History that the ledger does not have yet is work too: a terminal escrow whose write succeeds but whose
        // answer is lost must still come back to sync its ledger.
        DateTimeOffset? needed = EscrowMachine.NextDueAt(next) ?? (Unsynced(next) ? Now : null);
        if (needed is not { } due)
        {
            return;
        }
        var backstop = Now + options.Value.ReminderPeriod;
        if (due < backstop)
        {
            due = backstop;
        }
        if (_reminderDue is { } known && known <= due)
        {
            return;
        }
        await RegisterReminderAsync(due - Now);
    }

    private EscrowResult Ok() => new(EscrowViews.From(state.State), null);

    /// <summary>
    /// The answer to the create (first or retried): the one view with the clear access token, derived again from the
    /// token secret, since the escrow keeps only its hash.
    /// </summary>
    private EscrowResult Created() => new(EscrowViews.From(state.State) with { AccessToken = tokens.AccessTokenOf(state.State) ?? "" }, null);

    private EscrowResult Rejected(Rejection r) => new(state.State.Exists ? EscrowViews.From(state.State) : null, r);

    [LoggerMessage(Level = LogLevel.Information, Message = "Escrow {EscrowId} created for recipient {RecipientId}: {AmountMinor} {Currency}")]
    private partial void LogCreated(Guid escrowId, string recipientId, long amountMinor, string currency);

    [LoggerMessage(Level = LogLevel.Information, Message = "Escrow {EscrowId}: {From} -> {To}")]
    private partial void LogStatus(Guid escrowId, string from, string to);

    [LoggerMessage(Level = LogLevel.Information, Message = "Escrow {EscrowId} refused {Command}: {Rejection}")]
    private partial void LogRejected(Guid escrowId, string command, string rejection);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Escrow {EscrowId}: {Command} is durable, but the work after it failed for now; the reminder re-drives it")]
    private partial void LogFailedAfterDecision(Exception e, Guid escrowId, string command);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Escrow {EscrowId}: the reminder could not be moved to the next due time; the one ensured before the write stands")]
    private partial void LogScheduleFailed(Exception e, Guid escrowId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Escrow {EscrowId}: the ledger and projection could not be written; retried on the next write or tick")]
    private partial void LogSyncFailed(Exception e, Guid escrowId);
}
