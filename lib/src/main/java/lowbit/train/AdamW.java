package lowbit.train;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.List;

/**
 * torch.optim.AdamW: Adam's moments with bias correction and decoupled weight decay (w -= lr * decay * w before the
 * Adam update), decay only on parameters with {@link Parameter#decay()}. Moments are float32 like torch's.
 */
public final class AdamW {
    private static final int MAGIC = 0x41644d57; // "AdMW"
    private final List<Parameter> params;
    private final double beta1, beta2, eps, weightDecay;
    private final float[][] m, v;
    private int steps;

    public AdamW(List<Parameter> params, double beta1, double beta2, double eps, double weightDecay) {
        if (!(beta1 >= 0 && beta1 < 1)) throw new IllegalArgumentException("AdamW beta1 must be in [0, 1), found " + beta1);
        if (!(beta2 >= 0 && beta2 < 1)) throw new IllegalArgumentException("AdamW beta2 must be in [0, 1), found " + beta2);
        if (!(eps > 0)) throw new IllegalArgumentException("AdamW eps must be > 0, found " + eps);
        if (!(weightDecay >= 0) || !Double.isFinite(weightDecay))
            throw new IllegalArgumentException("--weight-decay must be a finite number >= 0, found " + weightDecay);
        this.params = List.copyOf(params);
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        m = new float[this.params.size()][];
        v = new float[this.params.size()][];
        for (int i = 0; i < m.length; i++) {
            m[i] = new float[this.params.get(i).size()];
            v[i] = new float[this.params.get(i).size()];
        }
    }

    /** One update with learning rate lr from the parameters' current gradients. */
    public void step(double lr) {
        if (!(lr >= 0) || !Double.isFinite(lr)) throw new IllegalArgumentException("learning rate must be a finite number >= 0, found " + lr);
        steps++;
        double bc1 = 1 - Math.pow(beta1, steps), bc2 = 1 - Math.pow(beta2, steps);
        double stepSize = lr / bc1, sqrtBc2 = Math.sqrt(bc2);
        float b1 = (float) beta1, b2 = (float) beta2;
        for (int i = 0; i < m.length; i++) {
            Parameter p = params.get(i);
            float[] w = p.value(), g = p.grad(), mi = m[i], vi = v[i];
            float shrink = p.decay() ? (float) (1 - lr * weightDecay) : 1f;
            for (int j = 0; j < w.length; j++) {
                mi[j] = b1 * mi[j] + (1 - b1) * g[j];
                vi[j] = b2 * vi[j] + (1 - b2) * g[j] * g[j];
                double denom = Math.sqrt(vi[j]) / sqrtBc2 + eps;
                w[j] = (float) (w[j] * shrink - stepSize * mi[j] / denom);
            }
        }
    }

    public int steps() {
        return steps;
    }

    /** Step count and both moments of every parameter, under its name and size, for resuming. */
    public void write(DataOutputStream out) throws IOException {
        out.writeInt(MAGIC);
        out.writeInt(steps);
        out.writeInt(params.size());
        for (int i = 0; i < m.length; i++) {
            out.writeUTF(params.get(i).name());
            out.writeInt(m[i].length);
            for (float f : m[i]) out.writeFloat(f);
            for (float f : v[i]) out.writeFloat(f);
        }
    }

    /** Reads what {@link #write} wrote for the same parameters (names and sizes in the same order), else refuses. */
    public void read(DataInputStream in) throws IOException {
        if (in.readInt() != MAGIC) throw new IllegalArgumentException("optimizer state: not an AdamW state");
        int s = in.readInt(), n = in.readInt();
        if (s < 0) throw new IllegalArgumentException("optimizer state: step count " + s + " is negative");
        if (n != params.size())
            throw new IllegalArgumentException("optimizer state holds " + n + " parameters, this optimizer trains " + params.size());
        float[][] mm = new float[n][], vv = new float[n][];
        for (int i = 0; i < n; i++) {
            String name = in.readUTF();
            int size = in.readInt();
            Parameter p = params.get(i);
            if (!name.equals(p.name()) || size != p.size())
                throw new IllegalArgumentException("optimizer state parameter " + i + " is " + name + " [" + size + "], expected "
                        + p.name() + " [" + p.size() + "]");
            mm[i] = new float[size];
            vv[i] = new float[size];
            for (int j = 0; j < size; j++) mm[i][j] = in.readFloat();
            for (int j = 0; j < size; j++) vv[i][j] = in.readFloat();
        }
        for (int i = 0; i < n; i++) {
            m[i] = mm[i];
            v[i] = vv[i];
        }
        steps = s;
    }
}
