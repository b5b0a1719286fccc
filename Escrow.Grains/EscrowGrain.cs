using Microsoft.Extensions.DependencyInjection;
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

    /// <summary>
    /// The projection or the ledger lags the state: new history, or an outbox change the stuck-escrow monitor counts
    /// (an effect completed or added without a history entry).
    /// </summary>
    private bool Unsynced(EscrowState s) => s.History.Length != _syncedVersion || EffectAge.Seq(s) != _syncedOutboxSeq;

    private EscrowResult Ok() => new(EscrowViews.From(state.State), null);

    /// <summary>
    /// The answer to the create (first or retried): the one view with the clear access token, derived again from the
    /// token secret, since the escrow keeps only its hash.
    /// </summary>
    private EscrowResult Created() => new(EscrowViews.From(state.State) with { AccessToken = tokens.AccessTokenOf(state.State) ?? "" }, null);

    private EscrowResult Rejected(Rejection r) => new(state.State.Exists ? EscrowViews.From(state.State) : null, r);
}
