namespace Escrow.Grains.Domain;

/// <summary>
/// The persisted state of one escrow: its facts, its status, and the outbox of effects still to perform.
/// Written in one WriteStateAsync together with every status change, so the status and its pending effects
/// are never out of step. Members are appended with new ids, never renumbered (Orleans binary format).
/// </summary>
[GenerateSerializer, Alias("escrow.state.v1")]
public sealed record EscrowState
{
    public const int HistoryEntriesMax = 200;
    public const int OutboxEffectsMax = 32;

    [Id(0)] public Guid Id { get; init; }
    [Id(1)] public bool Exists { get; init; }
    [Id(2)] public string RecipientId { get; init; } = "";
    [Id(3)] public string SenderEmail { get; init; } = "";
    [Id(4)] public string Subject { get; init; } = "";
    [Id(5)] public string Message { get; init; } = "";
    [Id(6)] public Money Amount { get; init; }
    [Id(7)] public int RevenueShareBps { get; init; }
    [Id(8)] public Split Split { get; init; }
    [Id(9)] public TimeSpan ResponseWindow { get; init; }
    [Id(10)] public DateTimeOffset CreatedAt { get; init; }
    [Id(11)] public DateTimeOffset Deadline { get; init; }
    [Id(12)] public DateTimeOffset ReplyDeadline { get; init; }
    [Id(13)] public DateTimeOffset UnpaidExpiresAt { get; init; }
    [Id(14)] public string RequestHash { get; init; } = "";
    /// <summary>
    /// Legacy: the clear reply token of an escrow stored before tokens were kept as hashes (empty since). It goes when
    /// the escrow ends (<see cref="WithoutClearTokens"/>); new escrows keep <see cref="ReplyTokenHash"/> only.
    /// </summary>
    [Id(15)] public string ReplyToken { get; init; } = "";

    /// <summary>Legacy: the clear access token of an escrow stored before tokens were kept as hashes (empty since).</summary>
    [Id(16)] public string AccessToken { get; init; } = "";
    [Id(17)] public string? PaymentMethodId { get; init; }
    [Id(18)] public EscrowStatus Status { get; init; }
    [Id(19)] public DateTimeOffset StatusChangedAt { get; init; }
    [Id(20)] public string? PaymentIntentId { get; init; }
    [Id(21)] public string? ClientSecret { get; init; }
    [Id(22)] public string? ChargeId { get; init; }
    [Id(23)] public string? TransferId { get; init; }
    [Id(24)] public DateTimeOffset? HeldAt { get; init; }
    [Id(25)] public ReplyRecord? Reply { get; init; }
    [Id(26)] public int TransferFailures { get; init; }
    [Id(27)] public DateTimeOffset? FirstTransferAttemptAt { get; init; }
    [Id(28)] public DateTimeOffset? NextTransferAttemptAt { get; init; }
    [Id(29)] public DateTimeOffset? NextPermitRequestAt { get; init; }
    [Id(30)] public bool RefundAwaitingApproval { get; init; }
    [Id(31)] public bool RefundApproved { get; init; }
    [Id(32)] public bool DisputeOpen { get; init; }
    [Id(33)] public bool Reminder50Sent { get; init; }
    [Id(34)] public bool Reminder75Sent { get; init; }
    [Id(35)] public bool NeedsOperator { get; init; }
    [Id(36)] public string? LastError { get; init; }
    [Id(37)] public int NextEffectId { get; init; } = 1;
    [Id(38)] public ImmutableArray<PendingEffect> Outbox { get; init; } = [];
    [Id(39)] public ImmutableArray<HistoryEntry> History { get; init; } = [];
    [Id(40)] public string? RefundId { get; init; }
    [Id(41)] public string? RecipientAccountId { get; init; }

    /// <summary>Part of the transfer's idempotency key; moves on only after Stripe refused a transfer for good.</summary>
    [Id(42)] public int TransferKeyAttempt { get; init; }

    /// <summary>
    /// While waiting in pending_user_setup: when the escrow asks the recipient again on its own, so it never depends
    /// only on the recipient's call to move on (a lost call or a lost waiting-list entry would otherwise strand it).
    /// </summary>
    [Id(43)] public DateTimeOffset? PayoutCheckAt { get; init; }

    public const int AppliedEventsMax = 16;

    /// <summary>
    /// The last Stripe events whose change this state holds, written with that change: a redelivery is recognised here,
    /// without a look in the webhook inbox. Empty in states written before it was kept.
    /// </summary>
    [Id(44)] public ImmutableArray<string> AppliedEvents { get; init; } = [];

    /// <summary>Why the last attempt to pay was declined (Stripe's error code); null while no attempt failed.</summary>
    [Id(45)] public string? LastPaymentError { get; init; }

    /// <summary>Declined attempts so far; numbers the retries' idempotency keys and bounds them.</summary>
    [Id(46)] public int PaymentDeclines { get; init; }

    public const int PaymentDeclinesMax = 10;

    /// <summary>What erased personal data is replaced with.</summary>
    public const string Erased = "erased";

    // Ids 90 and up: kept apart from the lifecycle's own additions.

    /// <summary>When the subject and message were erased (retention or an erasure request); null while kept.</summary>
    [Id(90)] public DateTimeOffset? BodiesErasedAt { get; init; }

    /// <summary>When the sender's e-mail address was erased too (an erasure request); null while kept.</summary>
    [Id(91)] public DateTimeOffset? PersonalDataErasedAt { get; init; }

    /// <summary>
    /// SHA-256 of the reply token and of the access token (see <see cref="TokenHash"/>). The tokens themselves are
    /// never stored: they are derived again from the token secret whose id is <see cref="TokenKeyId"/> when an e-mail
    /// or a retried create needs them.
    /// </summary>
    [Id(92)] public string ReplyTokenHash { get; init; } = "";

    [Id(93)] public string AccessTokenHash { get; init; } = "";

    /// <summary>The id of the token secret the tokens were derived with; null for an escrow stored before (legacy clear tokens).</summary>
    [Id(94)] public string? TokenKeyId { get; init; }

    /// <summary>The hash a presented reply token is compared with: the stored one, or the legacy clear token's.</summary>
    public string ReplyTokenDigest => ReplyTokenHash.Length > 0 ? ReplyTokenHash : ReplyToken.Length > 0 ? TokenHash.OfReplyToken(ReplyToken) : "";

    /// <summary>The hash a presented access token is compared with: the stored one, or the legacy clear token's.</summary>
    public string AccessTokenDigest => AccessTokenHash.Length > 0 ? AccessTokenHash : AccessToken.Length > 0 ? TokenHash.OfAccessToken(AccessToken) : "";

    /// <summary>
    /// A legacy escrow's clear tokens replaced by their hashes: done when it ends, after which no reminder needs the
    /// reply token and no receipt the access token. An escrow without clear tokens is returned as it is.
    /// </summary>
    public EscrowState WithoutClearTokens() => ReplyToken.Length == 0 && AccessToken.Length == 0
        ? this
        : this with { ReplyTokenHash = ReplyTokenDigest, AccessTokenHash = AccessTokenDigest, ReplyToken = "", AccessToken = "" };

    /// <summary>
    /// The first idempotency-key attempt of a money effect an operator starts again after Stripe refused one for good:
    /// Stripe replays a refused request's saved answer to its key, so the new try must not reuse it.
    /// </summary>
    [Id(47)] public int MoneyKeyAttemptFloor { get; init; }

    /// <summary>The transfer this service reversed (its share taken back from the recipient), and the reversal's id.</summary>
    [Id(48)] public string? ReversedTransferId { get; init; }

    [Id(49)] public string? TransferReversalId { get; init; }

    /// <summary>The last dispute (chargeback) of the escrow's charge, Stripe's id, and where it stands; null when none was opened.</summary>
    [Id(50)] public string? DisputeId { get; init; }

    [Id(51)] public DisputeStatus? DisputeStatus { get; init; }

    /// <summary>Whether the transfer of record was taken back from the recipient by this service.</summary>
    public bool ShareReversed => TransferId is not null && ReversedTransferId == TransferId;

    /// <summary>Whether the escrow paid out by this transfer once (it may have been taken back since).</summary>
    public bool MadeTransfer(string transferId) =>
        TransferId == transferId
            || History.Any(h => h.Event is "transferred" or "transfer_adopted" && h.Detail == transferId);

    public bool HasApplied(string eventId) => !AppliedEvents.IsDefault && AppliedEvents.Contains(eventId);

    public EscrowState WithApplied(string eventId)
    {
        var applied = AppliedEvents.IsDefault ? [] : AppliedEvents;
        return this with { AppliedEvents = [.. applied.Skip(Math.Max(0, applied.Length + 1 - AppliedEventsMax)), eventId] };
    }

    public bool IsTerminal => Status.IsTerminal();

    public DateTimeOffset Reminder50At => CreatedAt + (ResponseWindow / 2);

    public DateTimeOffset Reminder75At => CreatedAt + (ResponseWindow * 3 / 4);
}

/// <summary>What the grain must still do for this escrow. Removed from the outbox when done.</summary>
/// <remarks>
/// <see cref="KeyAttempt"/> numbers the Stripe idempotency key of the effect's next call: it moves on after each failed
/// try, because Stripe replays a saved failure to every retry with the same key (the next try reads the object first).
/// A RaiseAlert effect carries its <see cref="Alert"/> kind, its text in <see cref="Detail"/>, and the key that makes a
/// repeated finding one alert (<see cref="AlertKey"/>; null: the effect's own id).
/// <see cref="AddedAt"/> is when the state that decided it was staged (<see cref="EffectAge"/>); null only in states
/// written before it existed.
/// </remarks>
[GenerateSerializer, Immutable, Alias("escrow.effect.v1")]
public sealed record PendingEffect(
    [property: Id(0)] int Id,
    [property: Id(1)] EffectKind Kind,
    [property: Id(2)] EmailKind? Email = null,
    [property: Id(3)] string? Detail = null,
    [property: Id(4)] int Attempts = 0,
    [property: Id(5)] DateTimeOffset? NotBefore = null,
    [property: Id(6)] string? Payload = null,
    [property: Id(7)] int KeyAttempt = 0,
    [property: Id(8)] AlertKind? Alert = null,
    [property: Id(9)] string? AlertKey = null,
    [property: Id(10)] DateTimeOffset? AddedAt = null);

public enum EffectKind
{
    CreatePaymentIntent = 0,
    CapturePayment = 1,
    TransferShare = 2,
    CancelPaymentIntent = 3,
    RequestRefundPermit = 4,
    SendEmail = 5,
    ReleaseDailySlot = 6,
    RaiseAlert = 7,
    AwaitPayoutSetup = 8,
    RefundPayment = 9,
    /// <summary>Confirms the declined PaymentIntent again with the payment method in the payload.</summary>
    ConfirmPayment = 10,
    /// <summary>Takes the recipient's share back from their connected account (a transfer reversal).</summary>
    ReverseTransfer = 11,
    /// <summary>The payment is authorised: the recipient's daily slot is taken and the escrow stops counting as unpaid.</summary>
    TakeDailySlot = 12,
    /// <summary>Writes the audit row of the change that added it (payload: who and why, see EscrowAudit).</summary>
    WriteAudit = 13,
}

/// <summary>Where a dispute stands: open until Stripe's charge.dispute.closed says won or lost, or an operator resolves it.</summary>
public enum DisputeStatus
{
    Open = 0,
    Won = 1,
    Lost = 2,
    /// <summary>An operator closed it (POST /v1/admin/escrows/{id}/resolve-dispute), not Stripe.</summary>
    Resolved = 3,
}

/// <summary>
/// Why the sender got their money back (or never paid): the refund and missed-opportunity e-mails are written for it.
/// Carried in the e-mail effect's detail.
/// </summary>
public enum RefundCause
{
    /// <summary>The deadline and its grace passed with no reply.</summary>
    NoReply = 0,
    /// <summary>The platform refunded before the recipient replied.</summary>
    PlatformBeforeReply = 1,
    /// <summary>The platform refunded after a reply, before the recipient was paid.</summary>
    PlatformAfterReply = 2,
    /// <summary>The platform refunded after the recipient was paid: their share was taken back.</summary>
    PlatformAfterRelease = 3,
    /// <summary>The card's authorisation expired (or was voided) while the refund waited.</summary>
    AuthorisationExpired = 4,
    /// <summary>The sender's bank decided a dispute (chargeback) for the sender.</summary>
    Dispute = 5,
}

public enum EmailKind
{
    NewMessage = 0,
    DeadlineReminder50 = 1,
    DeadlineReminder75 = 2,
    ReplyForwarded = 3,
    PaymentReceipt = 4,
    RefundIssued = 5,
    MissedOpportunity = 6,
    PayoutSent = 7,
    PendingPayoutSetup = 8,
    /// <summary>To the sender: the card's authorisation was cancelled outside this service (expired, voided in Stripe); nothing is charged.</summary>
    PaymentVoided = 9,
    /// <summary>To the recipient: the same cancellation; the message no longer pays (or, replied to, could not be paid).</summary>
    PaymentWithdrawn = 10,
}

/// <summary>One line of the escrow's history; each becomes an insert-only ledger row.</summary>
[GenerateSerializer, Immutable, Alias("escrow.history.v1")]
public sealed record HistoryEntry(
    [property: Id(0)] int Seq,
    [property: Id(1)] EscrowStatus Status,
    [property: Id(2)] DateTimeOffset At,
    [property: Id(3)] string Event,
    [property: Id(4)] long? AmountMinor = null,
    [property: Id(5)] string? Detail = null);

[GenerateSerializer, Immutable, Alias("escrow.reply.v1")]
public sealed record ReplyRecord(
    [property: Id(0)] DateTimeOffset ReceivedAt,
    [property: Id(1)] string Source,
    [property: Id(2)] bool GraceUsed);
