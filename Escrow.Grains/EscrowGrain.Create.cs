using Orleans.Storage;

namespace Escrow.Grains;

// Creating an escrow, and answering a create retried with the same request.
public sealed partial class EscrowGrain
{
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
}
