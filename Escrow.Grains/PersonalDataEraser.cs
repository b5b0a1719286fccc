namespace Escrow.Grains;

/// <summary>The outcome of an erasure: the escrows erased, and those that refused because they are still open.</summary>
public sealed record ErasureOutcome(IReadOnlyList<Guid> Erased, IReadOnlyList<Guid> Open, ErasedRows? Rows)
{
    public bool Refused => Open.Count > 0;
}

/// <summary>
/// Erases a person's data everywhere it is stored: each escrow's grain state (through its grain, so the projection is
/// written again too), then the rows of the other tables. Refused while one of the person's escrows is open; nothing is
/// erased then. Running it again is harmless: what is erased stays erased.
/// </summary>
public sealed class PersonalDataEraser(IGrainFactory grains, IPersonalDataStore store)
{
    public const int EscrowsPerPersonMax = 10_000;

    /// <summary>A sender, by e-mail address: their escrows' texts and address, and the address in every table.</summary>
    public async Task<ErasureOutcome> EraseSenderAsync(string email)
    {
        var escrows = await store.FindEscrowsBySenderAsync(PersonalData.SenderKey(email), EscrowsPerPersonMax);
        return await EraseAsync(escrows, email);
    }

    /// <summary>A recipient's escrows (texts and senders' addresses) and the recipient's own address; then the profile.</summary>
    public async Task<ErasureOutcome?> DeleteRecipientAsync(string recipientId)
    {
        var recipient = await grains.GetGrain<IRecipientGrain>(recipientId).GetAsync();
        if (recipient is null)
        {
            return null;
        }
        var escrows = await store.FindEscrowsOfRecipientAsync(recipientId, EscrowsPerPersonMax);
        var open = OpenOf(escrows);
        if (open.Count > 0)
        {
            return new ErasureOutcome([], open, null);
        }
        var outcome = await EraseAsync(escrows, recipient.Email);
        if (!outcome.Refused)
        {
            await grains.GetGrain<IRecipientGrain>(recipientId).DeleteAsync();
        }
        return outcome;
    }

    private async Task<ErasureOutcome> EraseAsync(IReadOnlyList<EscrowProjection> escrows, string email)
    {
        var open = OpenOf(escrows);
        if (open.Count > 0)
        {
            return new ErasureOutcome([], open, null);
        }
        var erased = new List<Guid>();
        var senders = new Dictionary<Guid, string>();
        foreach (var p in escrows)
        {
            if (await grains.GetGrain<IEscrowGrain>(p.EscrowId).GetAsync() is { SenderEmail: { } sender } && sender != PersonalData.Erased)
            {
                senders[p.EscrowId] = sender;
            }
            var result = await grains.GetGrain<IEscrowGrain>(p.EscrowId).ErasePersonalDataAsync(bodiesOnly: false);
            if (result.Accepted || result.Rejection == Rejection.AlreadyDone)
            {
                erased.Add(p.EscrowId);
            }
            else
            {
                // Terminal by its projection, but its grain still has e-mails to send: asked again later, it is done.
                open.Add(p.EscrowId);
            }
        }
        var rows = await store.ErasePersonalDataAsync(new PersonalDataErasure(email, erased, senders.Where(s => erased.Contains(s.Key)).ToDictionary()));
        return new ErasureOutcome(erased, open, rows);
    }

    private static List<Guid> OpenOf(IReadOnlyList<EscrowProjection> escrows) =>
        [.. escrows.Where(p => !(EscrowStatusNames.TryParseWire(p.Status, out var s) && s.IsTerminal())).Select(p => p.EscrowId)];
}
