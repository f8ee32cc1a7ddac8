"""The trained model: Sempart's head on a frozen backbone (paper App. A).

    head      SempartHead: transformer on the keys, convolutional decoder, coarse and fine logits
    sempart   SempartModel (head + backbone) and the checkpoint contract (save, read, load)
    released  the authors' released heads ({'segmenter_state_dict': ...}) renamed into SempartHead
"""
